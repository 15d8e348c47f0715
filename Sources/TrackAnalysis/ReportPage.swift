/// The report's stylesheet and script: plain CSS and JavaScript, inline, no library, no network.
/// The script reads the `report-data` JSON block and draws the runs table, the column chooser,
/// the compare view and every figure (SVG, in the palette of track's Cairo figures).
enum ReportPage {
    static let style = """
        body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;margin:2em;color:#222;max-width:1400px}
        table{border-collapse:collapse;margin:0.5em 0 1.5em}th,td{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left}
        td.num{text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3}
        table.sortable th{cursor:pointer}th.asc:after{content:" \\25B2"}th.desc:after{content:" \\25BC"}
        #runs td{white-space:nowrap;max-width:22em;overflow:hidden;text-overflow:ellipsis}
        .meta{color:#666}section.run{border-top:2px solid #ccc;margin-top:1.5em}section.brief{border-top:1px solid #ddd;margin-top:0.5em}
        section.brief h3{font-size:1em;margin:0.4em 0}.derivation{color:#444;font-size:0.9em}
        caption{caption-side:top;text-align:left;color:#555;padding:4px 0}.controls{display:flex;gap:1em;align-items:baseline;flex-wrap:wrap}
        #chooser{border:1px solid #ccc;padding:2px 8px}#column-list{columns:4;font-size:0.85em;max-width:1000px}#column-list label{display:block}
        .figs{display:flex;flex-wrap:wrap;gap:1em}.fig{min-height:40px}.fig.wide{width:100%}
        .legend{font-size:12px;display:flex;flex-wrap:wrap;gap:0.3em 1.2em;margin:0.2em 0 1em}.legend span{white-space:nowrap}
        .swatch{display:inline-block;width:14px;height:9px;margin-right:4px;vertical-align:baseline}
        #compare{border:2px solid #1f77b4;padding:0 1em;margin:1em 0}td.sig{font-weight:bold}
        """

    static let script = #"""
        (function(){
        'use strict';
        var D=JSON.parse(document.getElementById('report-data').textContent);
        var runs=D.runs, byName={}, order={};
        runs.forEach(function(r,i){byName[r.name]=r;order[r.name]=i;});
        var COLORS=['#1f77b4','#d62728','#2ca02c','#ff7f0e','#9467bd','#8c564b','#e377c2','#7f7f7f'];
        var BAR=[31,120,181], OVER='#f59e9e', UNDER='#ff9e0d', OVERLINE='#d62728', UNDERLINE='#bf7610';
        function esc(t){return String(t).replace(/&/g,'&amp;').replace(/</g,'&lt;').replace(/>/g,'&gt;').replace(/"/g,'&quot;');}
        function uniq(a){var s={},o=[];a.forEach(function(x){if(!s[x]){s[x]=1;o.push(x);}});return o;}
        function keysOf(field){return uniq([].concat.apply([],runs.map(function(r){return Object.keys(r[field]);}))).sort();}
        function fmt(v,d){return v===null||v===undefined||v===''?'':(typeof v==='number'?v.toFixed(d===undefined?4:d):String(v));}
        function pfmt(p){return p===null||p===undefined?'':(p<0.001?'< 0.001':p.toFixed(3));}

        // ---- Columns: every metric, params.KEY, tags.KEY, logged.KEY, the run's fields.
        var fields=['run','model','method','dataset','split','status','source','experiment','epoch','step','parent','n'];
        var paramKeys=keysOf('params'), tagKeys=keysOf('tags'), loggedKeys=keysOf('logged');
        var allColumns=fields.concat(D.storedKeys).concat(paramKeys.map(function(k){return 'params.'+k;}))
          .concat(tagKeys.map(function(k){return 'tags.'+k;})).concat(loggedKeys.map(function(k){return 'logged.'+k;}));
        var defaults=['run','model','method','dataset','split'];
        if(runs.some(function(r){return r.epoch!==null;}))defaults.push('epoch');
        if(runs.some(function(r){return r.parent!==null;}))defaults.push('parent');
        defaults=defaults.concat(['n']).concat(D.metricKeys);
        function value(run,col){
          if(col==='run')return run.name;
          if(col.indexOf('params.')===0){var p=run.params[col.slice(7)];return p===undefined?null:p;}
          if(col.indexOf('tags.')===0){var t=run.tags[col.slice(5)];return t===undefined?null:t;}
          if(col.indexOf('logged.')===0){var l=run.logged[col.slice(7)];return l===undefined?null:l;}
          return run[col]===undefined?null:run[col];
        }
        var numericCache={};
        function numeric(col){
          if(numericCache[col]!==undefined)return numericCache[col];
          var values=runs.map(function(r){return value(r,col);}).filter(function(v){return v!==null&&v!=='';});
          var result=values.length>0&&values.every(function(v){return typeof v==='number'||(col.indexOf('params.')===0&&isFinite(Number(v)));});
          return numericCache[col]=result;
        }

        // ---- State in the fragment: cols=a,b,c (and run=ANCHOR after a link was followed).
        function parseHash(){var s={};location.hash.slice(1).split('&').forEach(function(p){var i=p.indexOf('=');
          if(i>0)s[decodeURIComponent(p.slice(0,i))]=decodeURIComponent(p.slice(i+1));});return s;}
        var state=parseHash();
        var columns=state.cols?state.cols.split(',').filter(function(c){return allColumns.indexOf(c)>=0;}):defaults.slice();
        if(columns.indexOf('run')<0)columns.unshift('run');
        function writeHash(extra){history.replaceState(null,'','#cols='+encodeURIComponent(columns.join(','))+(extra?'&'+extra:''));}

        var table=document.getElementById('runs'), selected=[], sortCol=null, ascending=true;
        function renderTable(){
          var head='<th class="pick" title="select to compare"></th>'+columns.map(function(c){
            var cls=c===sortCol?(ascending?' class="asc"':' class="desc"'):'';return '<th data-col="'+esc(c)+'"'+cls+'>'+esc(c)+'</th>';}).join('');
          table.tHead.rows[0].innerHTML=head;
          var list=runs.slice();
          if(sortCol){var num=numeric(sortCol);list.sort(function(a,b){var x=value(a,sortCol),y=value(b,sortCol);
            if(x===null||x==='')return 1;if(y===null||y==='')return -1;
            if(num){x=Number(x);y=Number(y);}else{x=String(x).toLowerCase();y=String(y).toLowerCase();}
            return (x<y?-1:x>y?1:0)*(ascending?1:-1);});}
          table.tBodies[0].innerHTML=list.map(function(r){
            var search=[r.name,r.model,r.method,r.dataset,r.split].concat(Object.keys(r.tags).map(function(k){return k+'='+r.tags[k];})).join(' ').toLowerCase();
            var cells='<td><input type="checkbox" class="pick"'+(selected.indexOf(r.name)>=0?' checked':'')+'></td>';
            columns.forEach(function(c){var v=value(r,c);
              if(c==='run'){cells+='<td title="'+esc(r.name)+'"><a class="runlink" href="#'+esc(r.anchor)+'">'+esc(r.name)+'</a></td>';}
              else if(c==='parent'&&v!==null&&byName[v]){cells+='<td><a class="runlink" href="#'+esc(byName[v].anchor)+'">'+esc(v)+'</a></td>';}
              else if(typeof v==='number'){var d=(c==='n'||c==='step')?0:(c==='epoch'?2:4);cells+='<td class="num" data-value="'+v+'">'+(c==='epoch'?String(v):fmt(v,d))+'</td>';}
              else{cells+='<td'+(numeric(c)?' class="num" data-value="'+esc(v===null?'':v)+'"':'')+' title="'+esc(v===null?'':v)+'">'+esc(v===null?'':v)+'</td>';}});
            return '<tr data-run="'+esc(r.name)+'" data-search="'+esc(search)+'">'+cells+'</tr>';}).join('');
          applyFilter();
        }
        table.tHead.addEventListener('click',function(e){var th=e.target.closest('th');if(!th||!th.dataset.col)return;
          var col=th.dataset.col;ascending=sortCol===col?!ascending:true;sortCol=col;renderTable();});
        var filterBox=document.getElementById('filter');
        function applyFilter(){var q=filterBox.value.toLowerCase();Array.prototype.forEach.call(table.tBodies[0].rows,function(r){
          r.style.display=r.getAttribute('data-search').indexOf(q)>=0||r.getAttribute('data-run').toLowerCase().indexOf(q)>=0?'':'none';});}
        filterBox.addEventListener('input',applyFilter);

        // ---- The column chooser.
        var chooser=document.getElementById('column-list');
        chooser.innerHTML=allColumns.map(function(c){return '<label><input type="checkbox" data-col="'+esc(c)+'"'+(columns.indexOf(c)>=0?' checked':'')+
          (c==='run'?' disabled':'')+'> '+esc(c)+'</label>';}).join('');
        chooser.addEventListener('change',function(e){var c=e.target.dataset.col;if(!c)return;
          columns=allColumns.filter(function(x){return x===c?e.target.checked:columns.indexOf(x)>=0;});writeHash();renderTable();});

        // ---- Links to runs keep the columns in the fragment.
        document.addEventListener('click',function(e){var a=e.target.closest('a');if(!a)return;var h=a.getAttribute('href')||'';
          if(h.indexOf('#run-')!==0)return;var target=document.getElementById(h.slice(1));if(!target)return;
          e.preventDefault();writeHash('run='+encodeURIComponent(h.slice(1)));target.scrollIntoView({block:'start'});});

        // ---- Selection and the compare view.
        var button=document.getElementById('compare-button');
        table.tBodies[0].addEventListener('change',function(e){if(!e.target.classList.contains('pick'))return;
          var name=e.target.closest('tr').dataset.run,i=selected.indexOf(name);
          if(e.target.checked&&i<0){if(selected.length>=5){e.target.checked=false;return;}selected.push(name);}
          if(!e.target.checked&&i>=0)selected.splice(i,1);
          button.textContent='Compare selected ('+selected.length+')';button.disabled=selected.length<2;});
        button.addEventListener('click',showCompare);
        function pair(base,other){for(var i=0;i<D.comparisons.length;i++){var c=D.comparisons[i];if(c.base===base&&c.other===other)return c;}return null;}
        // Column labels: the words the names do not share (as track's figures label runs); the full name on hover.
        function shortLabels(names){
          var words=names.map(function(n){return n.match(/(^|[\/\-_+: ])[^\/\-_+: ]*/g)||[n];});
          var least=Math.min.apply(null,words.map(function(w){return w.length;})),pre=0,suf=0;
          while(pre<least&&words.every(function(w){return w[pre]===words[0][pre];}))pre++;
          while(suf<least-pre&&words.every(function(w){return w[w.length-1-suf]===words[0][words[0].length-1-suf];}))suf++;
          while(pre+suf>least-1&&pre+suf>0){if(suf>0)suf--;else pre--;}
          var labels=words.map(function(w){var k=w.slice(pre,w.length-suf).join('');return pre>0?k.slice(1):k;});
          return uniq(labels).length===labels.length&&labels.every(function(l){return l;})?labels:names;
        }
        function showCompare(){
          var sel=selected.slice().sort(function(a,b){return order[a]-order[b];}),base=sel[0],others=sel.slice(1);
          var short={},labels=shortLabels(sel);sel.forEach(function(n,i){short[n]=labels[i];});
          function head(n,prefix){return '<th title="'+esc(n)+'">'+(prefix||'')+esc(short[n])+'</th>';}
          var html='<p>Base: <b>'+esc(base)+'</b> (the first selected run in the store’s order). Paired differences other − base on the shared questions: '+
            D.resamples+' Poisson-bootstrap resamples, seed 0, 95% intervals, p two-sided; accuracy also McNemar’s exact test — as <code>track compare '+
            esc(base)+' '+others.map(esc).join(' ')+' --metrics '+D.metricKeys.join(',')+' --resamples '+D.resamples+'</code> gives them.</p>';
          html+='<table id="compare-metrics"><thead><tr><th>metric</th>'+sel.map(function(n){return head(n);}).join('')+
            others.map(function(n){return head(n,'Δ ')+'<th>95% interval</th><th>p</th>';}).join('')+'</tr></thead><tbody>';
          D.metricKeys.forEach(function(k){
            html+='<tr><td>'+k+'</td>'+sel.map(function(n){var v=byName[n][k];
              return '<td class="num" data-run="'+esc(n)+'" data-key="'+k+'" data-value="'+(v===null?'':v)+'">'+fmt(v)+'</td>';}).join('');
            others.forEach(function(n){var c=pair(base,n),t=c&&c.paired_tests?c.paired_tests[k]:null;
              if(!t){html+='<td colspan="3" class="meta">no paired test in this report</td>';return;}
              var attrs=' data-pair="'+esc(n)+'" data-key="'+k+'"';
              html+='<td class="num'+(t.significant?' sig':'')+'"'+attrs+' data-field="delta" data-value="'+t.delta+'">'+fmt(t.delta)+'</td>'+
                '<td class="num"'+attrs+' data-field="ci" data-low="'+t.ci[0]+'" data-high="'+t.ci[1]+'">['+fmt(t.ci[0])+', '+fmt(t.ci[1])+']</td>'+
                '<td class="num"'+attrs+' data-field="p" data-value="'+t.p+'">'+pfmt(t.p)+'</td>';});
            html+='</tr>';});
          html+='<tr><td>McNemar (accuracy)</td><td colspan="'+sel.length+'"></td>'+others.map(function(n){var c=pair(base,n);
            if(!c||!c.mcnemar)return '<td colspan="3"></td>';
            return '<td colspan="2">right→wrong '+c.mcnemar.b+', wrong→right '+c.mcnemar.c+'</td><td class="num" data-pair="'+esc(n)+'" data-field="mcnemar" data-value="'+
              c.mcnemar.p+'">'+pfmt(c.mcnemar.p)+'</td>';}).join('')+'</tr></tbody></table>';
          var missing=others.filter(function(n){return !pair(base,n);});
          if(missing.length)html+='<p class="meta">Paired tests are precomputed for runs of one model on one dataset among the runs in detail; for the others run <code>track compare</code>.</p>';
          html+='<h3>Reliability, overlaid</h3><div id="compare-figure"></div>';
          html+='<h3>By subject</h3>';
          others.forEach(function(n){var c=pair(base,n);if(!c||!c.paired_by_subject)return;
            html+='<table class="sortable compare-subjects" data-pair="'+esc(n)+'"><caption>'+esc(n)+' against '+esc(base)+' on their shared questions</caption><thead><tr>'+
              '<th>subject</th><th>n</th><th>accuracy base</th><th>accuracy other</th><th>Δ accuracy</th><th>mean Δ confidence</th><th>Δ conf_ece</th><th>right→wrong</th><th>wrong→right</th></tr></thead><tbody>';
            var bySubject=c.metrics_by_subject||{};
            Object.keys(c.paired_by_subject).forEach(function(s){var g=c.paired_by_subject[s],m=bySubject[s]&&bySubject[s].conf_ece?bySubject[s].conf_ece.delta:null;
              html+='<tr><td>'+esc(s)+'</td>'+[['n',g.n,0],['accuracy_base',g.accuracy_base],['accuracy_other',g.accuracy_other],
                ['delta_accuracy',g.accuracy_other-g.accuracy_base],['mean_delta_confidence',g.mean_delta_confidence],['delta_conf_ece',m],['right_to_wrong',g.right_to_wrong,0],
                ['wrong_to_right',g.wrong_to_right,0]].map(function(x){return '<td class="num" data-key="'+x[0]+'" data-value="'+(x[1]===null?'':x[1])+'">'+fmt(x[1],x[2])+'</td>';}).join('')+'</tr>';});
            html+='</tbody></table>';});
          var box=document.getElementById('compare');
          document.getElementById('compare-body').innerHTML=html;
          document.getElementById('compare-figure').innerHTML=reliability(sel.map(function(n,i){
            var m=byName[n];return {label:short[n]+': conf-ECE = '+fmt(m.conf_ece)+', n = '+byName[n].n,bins:byName[n].bins,color:COLORS[i%COLORS.length]};}),{overlay:true});
          box.querySelectorAll('table.sortable').forEach(sortable);
          box.hidden=false;box.scrollIntoView({block:'start'});
        }

        // ---- Figures, drawn as SVG when they come into view.
        function shade(share){var t=0.2+0.8*Math.min(Math.max(share,0),1);
          return 'rgb('+BAR.map(function(c){return Math.round(255+(c-255)*t);}).join(',')+')';}
        function line(x1,y1,x2,y2,color,w,dash){return '<line x1="'+x1.toFixed(1)+'" y1="'+y1.toFixed(1)+'" x2="'+x2.toFixed(1)+'" y2="'+y2.toFixed(1)+
          '" stroke="'+color+'" stroke-width="'+(w||1)+'"'+(dash?' stroke-dasharray="'+dash+'"':'')+'/>';}
        function rect(x,y,w,h,fill,stroke,sw){return '<rect x="'+x.toFixed(1)+'" y="'+y.toFixed(1)+'" width="'+Math.max(w,0).toFixed(1)+'" height="'+Math.max(h,0).toFixed(1)+
          '" fill="'+(fill||'none')+'"'+(stroke?' stroke="'+stroke+'" stroke-width="'+(sw||1)+'"':'')+'/>';}
        function text(x,y,t,anchor,size,extra){return '<text x="'+x.toFixed(1)+'" y="'+y.toFixed(1)+'" font-size="'+(size||10)+'" text-anchor="'+(anchor||'start')+'"'+(extra||'')+'>'+esc(t)+'</text>';}
        // One reliability diagram: bars shaded by samples (scale `shadeMax`) with opaque gaps, or (overlay)
        // each series as outlined bars in its colour; the diagonal; a count strip on its own scale.
        function reliability(series,opt){
          opt=opt||{};var W=opt.width||300,H=opt.height||300,L=42,R=8,T=opt.title?30:8,S=44,B=34;
          var ph=H-T-S-B,pw=W-L-R,px=function(v){return L+v*pw;},py=function(v){return T+(1-v)*ph;};
          var body='';if(opt.title){body+=text(W/2,13,opt.title,'middle',11);if(opt.subtitle)body+=text(W/2,25,opt.subtitle,'middle',9,' fill="#444"');}
          for(var g=0;g<=1.0001;g+=0.2){body+=line(px(g),T,px(g),T+ph,'#e0e0e0',0.5)+line(L,py(g),L+pw,py(g),'#e0e0e0',0.5);}
          var shadeMax=opt.shadeMax||Math.max.apply(null,[1].concat(series[0].bins.map(function(b){return b[2];})));
          series.forEach(function(s,i){var inset=opt.overlay?0.6+1.2*i:0;
            s.bins.forEach(function(b){if(!b[2]||b[3]===null)return;var x0=px(b[0]),x1=px(b[1]),w=x1-x0,ins=Math.min(inset,w/3);
              if(opt.overlay){body+=rect(x0+ins,py(b[3]),w-2*ins,py(0)-py(b[3]),null,s.color,1.4);
                if(b[4]!==null)body+='<circle cx="'+px(b[4]).toFixed(1)+'" cy="'+py(b[3]).toFixed(1)+'" r="2" fill="'+s.color+'"/>';return;}
              body+=rect(x0,py(b[3]),w,py(0)-py(b[3]),shade(b[2]/shadeMax),'rgb(31,120,181)',0.6);
              if(b[4]!==null&&b[4]!==b[3]){var over=b[4]>b[3],hi=Math.max(b[3],b[4]),lo=Math.min(b[3],b[4]);
                body+=rect(x0,py(hi),w,py(lo)-py(hi),over?OVER:UNDER,over?OVERLINE:UNDERLINE,0.6);}});});
          body+=line(px(0),py(0),px(1),py(1),'#595959',1.2,'4 3')+rect(L,T,pw,ph,null,'#262626',0.8);
          for(var t=0;t<=1.0001;t+=0.2){body+=text(L-5,py(t)+3,t.toFixed(1),'end',9)+line(L-3,py(t),L,py(t),'#262626',0.8);}
          body+=text(12,T+ph/2,opt.yLabel||'Accuracy','middle',10,' transform="rotate(-90 12 '+(T+ph/2).toFixed(1)+')"');
          // The count strip, labelled with its maximum.
          var sy=T+ph+10,sh=S-14,top=Math.max.apply(null,[1].concat([].concat.apply([],series.map(function(s){return s.bins.map(function(b){return b[2];});}))));
          series.forEach(function(s){s.bins.forEach(function(b){if(!b[2])return;var h=b[2]/top*sh;
            body+=opt.overlay?rect(px(b[0])+0.5,sy+sh-h,px(b[1])-px(b[0])-1,h,null,s.color,1.2):rect(px(b[0]),sy+sh-h,px(b[1])-px(b[0]),h,'#8c8c8c');});});
          body+=rect(L,sy,pw,sh,null,'#262626',0.8)+text(L-4,sy+8,String(top),'end',8);
          for(var u=0;u<=1.0001;u+=0.2){body+=text(px(u),sy+sh+11,u.toFixed(1),'middle',9);}
          body+=text(L+pw/2,H-4,opt.xLabel||'Confidence','middle',10);
          var legend=opt.overlay?series.map(function(s){return '<span><i class="swatch" style="background:'+s.color+'"></i>'+esc(s.label)+'</span>';}).join(''):'';
          return '<div><svg class="figure" width="'+W+'" height="'+H+'" viewBox="0 0 '+W+' '+H+'" role="img">'+body+'</svg>'+(legend?'<div class="legend">'+legend+'</div>':'')+'</div>';
        }
        function reliabilityLegend(shadeMax,y){return '<div class="legend"><span>bar = '+(y||'accuracy')+', shade = samples in the bin: 1 <i class="swatch" style="background:'+shade(0)+
          '"></i><i class="swatch" style="background:'+shade(0.5)+'"></i><i class="swatch" style="background:'+shade(1)+'"></i> '+shadeMax+'</span>'+
          '<span><i class="swatch" style="background:'+OVER+'"></i>overconfident gap</span><span><i class="swatch" style="background:'+UNDER+
          '"></i>underconfident gap</span><span>- - perfect calibration</span></div>';}
        function binsMax(list){return Math.max.apply(null,[1].concat([].concat.apply([],list.map(function(bins){return bins.map(function(b){return b[2];});}))));}
        function drawFigure(el){
          var kind=el.dataset.kind,run=el.dataset.run,d=run?D.detail[run]:null,html='';
          if(kind==='reliability'&&d){var m=byName[run];html=reliability([{bins:d.bins}],{title:'reliability',subtitle:'conf-ECE = '+fmt(m.conf_ece)+'   n = '+byName[run].n})+reliabilityLegend(binsMax([d.bins]));}
          if(kind==='classwise'&&d&&d.classwise){var all=d.classwise.concat([d.pooled]),mx=binsMax(all);
            html='<div class="figs">'+all.map(function(bins,k){var last=k===d.classwise.length;
              return reliability([{bins:bins}],{title:last?'pooled (all options)':'option '+String.fromCharCode(65+k),width:220,height:250,shadeMax:mx,yLabel:'Frequency',xLabel:last?'Probability':'p(option '+String.fromCharCode(65+k)+')'});}).join('')+'</div>'+reliabilityLegend(mx,'frequency');}
          if(kind==='subjects'&&d&&d.subjects){var mx2=binsMax(d.subjects.map(function(s){return s.bins;}));
            html='<p class="meta">The '+d.subjects.length+' subjects of highest conf-ECE</p><div class="figs">'+d.subjects.map(function(s){
              return reliability([{bins:s.bins}],{title:s.subject,subtitle:'conf-ECE = '+fmt(s.conf_ece)+'   n = '+s.n,width:220,height:250,shadeMax:mx2});}).join('')+'</div>'+reliabilityLegend(mx2);}
          if(kind==='logged')html=loggedChart(el.dataset.key);
          el.innerHTML=html;el.dataset.drawn='1';
        }
        // Logged scalars: one line per run (a run that logged one value: a marker), EMA smoothing, log scale.
        var smoothing=document.getElementById('smoothing'),logScale=document.getElementById('log-scale');
        function loggedChart(key){
          var series=D.logged[key]||[],alpha=smoothing?Number(smoothing.value):0,useLog=logScale&&logScale.checked;
          var values=[].concat.apply([],series.map(function(s){return s.points.map(function(p){return p[1];});}));
          var canLog=values.every(function(v){return v>0;});useLog=useLog&&canLog;
          var tr=function(v){return useLog?Math.log10(v):v;};
          var xs=[].concat.apply([],series.map(function(s){return s.points.map(function(p){return p[0];});}));
          var x0=Math.min.apply(null,xs),x1=Math.max.apply(null,xs);if(x0===x1){x0-=1;x1+=1;}
          var ys=values.map(tr),y0=Math.min.apply(null,ys),y1=Math.max.apply(null,ys);if(y0===y1){y0-=Math.abs(y0)*0.1||0.5;y1+=Math.abs(y1)*0.1||0.5;}
          var pad=(y1-y0)*0.08;y0-=pad;y1+=pad;
          var W=760,H=300,L=60,R=12,T=10,B=36,pw=W-L-R,ph=H-T-B;
          var px=function(v){return L+(v-x0)/(x1-x0)*pw;},py=function(v){return T+(1-(tr(v)-y0)/(y1-y0))*ph;};
          var body=rect(L,T,pw,ph,null,'#262626',0.8);
          for(var i=0;i<=4;i++){var yv=y0+(y1-y0)*i/4,yy=T+(1-i/4)*ph;body+=line(L,yy,L+pw,yy,'#e0e0e0',0.5)+text(L-5,yy+3,useLog?Math.pow(10,yv).toPrecision(3):yv.toPrecision(3),'end',9);}
          for(var j=0;j<=4;j++){var xv=x0+(x1-x0)*j/4;body+=text(px(xv),T+ph+13,String(Math.round(xv)),'middle',9);}
          body+=text(L+pw/2,H-4,'step','middle',10);
          var legend='';
          series.forEach(function(s,k){var color=COLORS[k%COLORS.length],pts=s.points,sm=null,d='';
            if(pts.length===1){body+='<circle class="single" cx="'+px(pts[0][0]).toFixed(1)+'" cy="'+py(pts[0][1]).toFixed(1)+'" r="4" fill="'+color+'"/>';
              legend+='<span><svg width="12" height="10"><circle cx="6" cy="5" r="4" fill="'+color+'"/></svg> '+esc(s.run)+' = '+pts[0][1].toPrecision(6)+' (step '+pts[0][0]+')</span>';return;}
            pts.forEach(function(p,n){sm=sm===null?p[1]:alpha*sm+(1-alpha)*p[1];var v=useLog?Math.max(sm,1e-300):sm;d+=(n?'L':'M')+px(p[0]).toFixed(1)+','+py(v).toFixed(1);});
            body+='<path d="'+d+'" fill="none" stroke="'+color+'" stroke-width="1.6"/>';
            legend+='<span><i class="swatch" style="background:'+color+';height:3px"></i>'+esc(s.run)+' ('+s.count+' values)</span>';});
          var note=logScale&&logScale.checked&&!canLog?'<p class="meta">log scale needs positive values: drawn linear</p>':'';
          return '<svg class="figure" width="'+W+'" height="'+H+'" viewBox="0 0 '+W+' '+H+'" role="img">'+body+'</svg><div class="legend">'+legend+'</div>'+note;
        }
        function redrawLogged(){if(smoothing)document.getElementById('smoothing-value').textContent=smoothing.value;
          document.querySelectorAll('.fig[data-kind="logged"]').forEach(function(el){if(el.dataset.drawn)drawFigure(el);});}
        if(smoothing)smoothing.addEventListener('input',redrawLogged);if(logScale)logScale.addEventListener('change',redrawLogged);
        var figs=document.querySelectorAll('.fig');
        if('IntersectionObserver' in window){var io=new IntersectionObserver(function(entries){entries.forEach(function(en){
            if(en.isIntersecting&&!en.target.dataset.drawn){drawFigure(en.target);io.unobserve(en.target);}});},{rootMargin:'300px'});
          figs.forEach(function(f){io.observe(f);});}
        else figs.forEach(drawFigure);

        // ---- Sortable tables (per-subject tables): click a header.
        function sortable(t){var heads=t.tHead.rows[0].cells;Array.prototype.forEach.call(heads,function(th,i){th.addEventListener('click',function(){
          var asc=!th.classList.contains('asc');Array.prototype.forEach.call(heads,function(h){h.classList.remove('asc','desc');});th.classList.add(asc?'asc':'desc');
          var rows=Array.prototype.slice.call(t.tBodies[0].rows);
          rows.sort(function(a,b){var x=a.cells[i],y=b.cells[i],vx=x.getAttribute('data-value'),vy=y.getAttribute('data-value');
            var p=vx!==null?(vx===''?Infinity:parseFloat(vx)):x.textContent.toLowerCase(),q=vy!==null?(vy===''?Infinity:parseFloat(vy)):y.textContent.toLowerCase();
            return (p<q?-1:p>q?1:0)*(asc?1:-1);});rows.forEach(function(r){t.tBodies[0].appendChild(r);});});});}
        document.querySelectorAll('table.subjects').forEach(sortable);

        renderTable();
        if(state.run){var target=document.getElementById(state.run);if(target)target.scrollIntoView({block:'start'});}
        })();
        """#
}
