/// Isotonic regression as scikit-learn's `IsotonicRegression(out_of_bounds="clip",
/// y_min=0, y_max=1)` fits and predicts (METHODS §4): points sorted by x (then y),
/// x values within 1e-15 of the first of a run pooled into one (their weighted mean
/// y, summed weight), pool-adjacent-violators on the pooled values, clipped to
/// [0, 1]; predictions interpolate linearly between the fitted points, with x
/// clipped to the fitted range.
public struct IsotonicRegression: Sendable, Equatable {
    /// The fitted points (x increasing, y non-decreasing), interior points on a flat stretch dropped.
    public var x: [Double]
    public var y: [Double]

    public init(x: [Double], y: [Double]) {
        self.x = x
        self.y = y
    }

    /// Fits a non-decreasing map of `x` to `y` (weights 1).
    public static func fit(x values: [Double], y targets: [Double]) -> IsotonicRegression {
        precondition(values.count == targets.count && !values.isEmpty)
        let n = values.count
        // numpy's lexsort((y, x)): by x, ties by y. Probabilities are ≥ 0, so a stable radix sort of x
        // over the questions listed in y order (then index order) gives it without comparisons.
        // `sortedX` and `sortedY` are the points in that order.
        var sortedX: [Double], sortedY: [Double]
        if values.allSatisfy({ $0 >= 0 }), targets.allSatisfy({ $0 == 0 || $0 == 1 }) {
            // 0/1 outcomes: the order among equal x does not change the pooled sums (integers, exact),
            // so x alone is sorted, each point carrying its outcome.
            let sorted = values.withUnsafeBufferPointer { x in stableAscendingSort(count: n, histogram: RadixHistogram(x), value: { x[$0] }) }
            sortedX = sorted.sorted
            sortedY = targets.withUnsafeBufferPointer { y in sorted.order.map { y[Int($0)] } }
        } else if values.allSatisfy({ $0 >= 0 }), targets.allSatisfy({ $0 >= 0 }) {
            let byTarget = targets.withUnsafeBufferPointer { stableAscendingOrder($0) }
            let sorted = byTarget.withUnsafeBufferPointer { byTarget in
                values.withUnsafeBufferPointer { x in
                    stableAscendingSort(count: n, histogram: RadixHistogram(x), value: { x[Int(byTarget[$0])] })
                }
            }
            sortedX = sorted.sorted
            sortedY = byTarget.withUnsafeBufferPointer { byTarget in
                sorted.order.map { targets[Int(byTarget[Int($0)])] }
            }
        } else {
            let order = values.indices.sorted { values[$0] < values[$1] || (values[$0] == values[$1] && targets[$0] < targets[$1]) }
            sortedX = order.map { values[$0] }
            sortedY = order.map { targets[$0] }
        }
        // Pool equal x (sklearn's _make_unique, resolution 1e-15), in place.
        var pooled = 0, currentX = sortedX[0], sumY = 0.0, weight = 0.0
        var ws = [Double](unsafeUninitializedCapacity: n) { $1 = n }   // written up to `pooled` before read
        for j in 0..<n {
            let x = sortedX[j]
            if x - currentX >= 1e-15 {
                sortedX[pooled] = currentX; ws[pooled] = weight; sortedY[pooled] = sumY / weight
                pooled += 1
                currentX = x; weight = 1; sumY = sortedY[j]
            } else {
                weight += 1
                sumY += sortedY[j]
            }
        }
        sortedX[pooled] = currentX; ws[pooled] = weight; sortedY[pooled] = sumY / weight
        pooled += 1
        let fitted = poolAdjacentViolators(sortedY[..<pooled], weights: ws[..<pooled])
        // Drop interior points equal to both neighbours (they do not change the interpolation).
        var keptX: [Double] = [], keptY: [Double] = []
        for i in 0..<pooled {
            let value = min(max(fitted[i], 0), 1)
            if i == 0 || i == pooled - 1 || value != min(max(fitted[i - 1], 0), 1) || value != min(max(fitted[i + 1], 0), 1) {
                keptX.append(sortedX[i])
                keptY.append(value)
            }
        }
        return IsotonicRegression(x: keptX, y: keptY)
    }

    /// The weighted least-squares non-decreasing fit (pool adjacent violators): blocks kept on a
    /// stack in preallocated arrays (no allocation per block), written back in place.
    public static func poolAdjacentViolators<V: RandomAccessCollection<Double>, W: RandomAccessCollection<Double>>(
        _ values: V, weights: W) -> [Double] where V.Index == Int, W.Index == Int {
        let n = values.count
        // Filled before read (top ≤ the values seen): no zeroing of 3n words.
        var blockValue = [Double](unsafeUninitializedCapacity: n) { $1 = n }
        var blockWeight = [Double](unsafeUninitializedCapacity: n) { $1 = n }
        var blockCount = [Int](unsafeUninitializedCapacity: n) { $1 = n }
        var top = -1
        var index = weights.startIndex
        for value in values {
            var v = value, w = weights[index], c = 1
            index += 1
            while top >= 0, blockValue[top] >= v {
                let last = blockValue[top], lw = blockWeight[top], lc = blockCount[top]
                top -= 1
                v = (last * lw + v * w) / (lw + w)
                w += lw
                c += lc
            }
            top += 1
            blockValue[top] = v; blockWeight[top] = w; blockCount[top] = c
        }
        var out = [Double](repeating: 0, count: n), position = 0
        for b in 0...max(top, 0) where top >= 0 {
            for _ in 0..<blockCount[b] { out[position] = blockValue[b]; position += 1 }
        }
        return out
    }

    /// The fitted value at `value`: linear between fitted points, constant outside them.
    public func predict(_ value: Double) -> Double {
        guard x.count > 1 else { return y.first ?? 0 }
        let t = min(max(value, x[0]), x[x.count - 1])
        // scipy's interp1d: the first fitted x ≥ t (searchsorted), clipped to 1…n−1, and the one before.
        let high = min(max(searchSorted(x, t), 1), x.count - 1), low = high - 1
        let slope = (y[high] - y[low]) / (x[high] - x[low])
        return slope * (t - x[low]) + y[low]
    }
}

/// Histogram binning as netcal's `HistogramBinning` fits one class (METHODS §4): the
/// scores clipped to [ε, 1 − ε] (ε the double's epsilon), B equal-width bins on [0, 1]
/// (or equal-mass: numpy's linear quantiles, ends set to 0 and 1), each bin's value the
/// mean outcome of the scores in it (a score at an inner edge counts in the upper bin),
/// an empty bin's value the bin's centre. A score maps to the bin (edge_b, edge_b+1]
/// holding it (0 to the first bin), as netcal's transform.
public struct HistogramBinning: Sendable, Equatable {
    public var edges: [Double]
    public var values: [Double]

    public init(edges: [Double], values: [Double]) {
        self.edges = edges
        self.values = values
    }

    public static func fit(x raw: [Double], y: [Double], bins: Int, equalMass: Bool) -> HistogramBinning {
        let epsilon = Double.ulpOfOne
        let x = raw.map { min(max($0, epsilon), 1 - epsilon) }
        var edges = (0...bins).map { $0 == bins ? 1.0 : Double($0) * (1 / Double(bins)) }
        if equalMass {
            let sorted = x.sorted()
            edges = edges.map { q in
                // numpy's default quantile: linear between order statistics at q·(n − 1).
                let position = q * Double(sorted.count - 1)
                let low = Int(position.rounded(.down)), high = min(low + 1, sorted.count - 1)
                return sorted[low] + (sorted[high] - sorted[low]) * (position - Double(low))
            }
            edges[0] = 0
            edges[bins] = 1
        }
        var sums = [Double](repeating: 0, count: bins), counts = [Double](repeating: 0, count: bins)
        for (value, outcome) in zip(x, y) {
            // binned_statistic_dd: searchsorted(side="right") − 1, the last bin closed.
            var bin = searchSorted(edges, value, right: true) - 1
            if value == edges[bins] { bin = bins - 1 }
            guard bin >= 0, bin < bins else { continue }
            sums[bin] += outcome
            counts[bin] += 1
        }
        let values = (0..<bins).map { b in counts[b] > 0 ? sums[b] / counts[b] : 0.5 * (edges[b] + edges[b + 1]) }
        return HistogramBinning(edges: edges, values: values)
    }

    public func predict(_ value: Double) -> Double {
        // np.digitize(right=True) − 1: the first edge ≥ value, minus one; 0 → the first bin.
        let bin = min(max(searchSorted(edges, value) - 1, 0), values.count - 1)
        return min(max(values[bin], 0), 1)
    }
}

/// One map per class, fitted one-vs-rest on (p_ik, [y_i = k]) and applied to each
/// class's probability, then renormalised to sum to 1 per question (a question whose
/// values are all 0 gets the uniform distribution).
public enum OneVsRest {
    public static func fit<Map>(_ set: PredictionSet, rows: [Int]?, optionCount k: Int,
                                _ fit: ([Double], [Double]) -> Map) -> [Map] {
        let indices = rows ?? Array(0..<set.count)
        return (0..<k).map { c in
            fit(indices.map { set.probabilities[set.offsets[$0] + c] }, indices.map { Int(set.labels[$0]) == c ? 1 : 0 })
        }
    }

    public static func apply(_ set: PredictionSet, optionCount k: Int, _ predict: (Int, Double) -> Double) -> [Double] {
        var out = [Double](repeating: 0, count: set.count * k)
        for i in 0..<set.count {
            var total = 0.0
            for c in 0..<k {
                let value = predict(c, set.probabilities[set.offsets[i] + c])
                out[i * k + c] = value
                total += value
            }
            for c in 0..<k { out[i * k + c] = total > 0 ? out[i * k + c] / total : 1 / Double(k) }
        }
        return out
    }
}

/// numpy's `searchsorted` on ascending values: the first index whose value is ≥ `value`
/// (with `right`, > `value`); `sorted.count` when there is none.
func searchSorted(_ sorted: [Double], _ value: Double, right: Bool = false) -> Int {
    var low = 0, high = sorted.count
    while low < high {
        let middle = (low + high) / 2
        if sorted[middle] < value || (right && sorted[middle] == value) { low = middle + 1 } else { high = middle }
    }
    return low
}
