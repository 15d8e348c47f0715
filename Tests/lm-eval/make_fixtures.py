"""Generates the lm-evaluation-harness fixtures of track's ingest tests with the
real harness: a tiny random GPT-2 built locally (build_model.py), custom
multiple-choice tasks over local JSON data, evaluated by `lm_eval` with
--log_samples. No model hub, no data hub: everything is made here.

Usage: python make_fixtures.py WORK_DIR FIXTURES_DIR VERSION_TAG [--only-042]
(make.sh runs it for lm-eval 0.4.13 and 0.4.2 in their own venvs.)

Tasks and what each covers:
  synth_int       integer target, doc.choices a list of texts, acc + acc_norm + brier_score
  synth_letter    letter target, doc_to_choice letters, doc.choices a *different* list of letters (the trap)
  synth_text      text target resolved against the choices
  synth_template  piqa-style template choices {{[sol1, sol2]}} and a text target, no doc.choices
  synth_dict      ARC-style doc.choices as a dict {text, label}, target from answerKey
  synth_filters   two named filters
  synth_mi        acc_mutual_info (2K log-likelihoods per doc)
  synth_multi     several gold answers (a list target)
  synth_group     a group of two subtasks (synth_sub_a, synth_sub_b) with its aggregate
  synth_mmlu      MMLU's layout: a group of two subgroups (synth_mmlu_stem, synth_mmlu_humanities,
                  aliases stem / humanities) of two subject tasks each (synth_mmlu_physics, …),
                  of different sizes, each subject's doc_ids from 0, size-weighted aggregates
Runs: every task 0-shot; synth_int 2-shot into the same folder (two evaluations
in one folder); synth_int with --limit 10 and --output_path eval.json (the file layout);
synth_mmlu with synth_group and synth_int (a folder of several groups and a plain task), by a
model given as an absolute checkpoint path, twice (0-shot, then 1-shot) into `groups`.
"""
import json
import os
import random
import shutil
from importlib.metadata import version
import subprocess
import sys
from pathlib import Path

work, fixtures, tag = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve(), sys.argv[3]
work.mkdir(parents=True, exist_ok=True)
rng = random.Random(20261123)
NEW_HARNESS = tuple(int(part) for part in version("lm-eval").split(".")[:3]) >= (0, 4, 3)
WORDS = ("apple river stone cloud green seven quick slow north south metal glass bird tree salt sugar "
         "iron copper wind fire water earth light dark cold warm high low").split()


def phrase(n=2):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def write_jsonl(name, rows):
    path = work / "data" / f"{name}.jsonl"
    path.parent.mkdir(exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return path


N = 24
data = {}
data["int"] = [{"question": phrase(4), "choices": [phrase() for _ in range(4)], "answer": rng.randrange(4),
                "subject": rng.choice(["anatomy", "astronomy"])} for _ in range(N)]
letters = ["A", "B", "C", "D", "E"]
data["letter"] = []
for _ in range(N):
    shuffled = letters[:]
    rng.shuffle(shuffled)   # doc.choices: letters in another order, which the harness ignores
    data["letter"].append({"question": phrase(4), "options": [phrase() for _ in range(5)], "choices": shuffled,
                           "answer": rng.choice(letters)})
data["text"] = [{"question": phrase(4), "choices": [phrase() for _ in range(3)], "answer": rng.randrange(3)} for _ in range(N)]
for row in data["text"]:
    row["answer_text"] = row["choices"][row["answer"]]
data["template"] = [{"goal": phrase(4), "sol1": phrase(3), "sol2": phrase(3), "label": rng.randrange(2)} for _ in range(N)]
data["dict"] = []
for _ in range(N):
    labels = ["A", "B", "C", "D"]
    data["dict"].append({"question": phrase(4), "choices": {"text": [phrase() for _ in range(4)], "label": labels},
                         "answerKey": rng.choice(labels)})
data["multi"] = [{"question": phrase(4), "choices": [phrase() for _ in range(4)],
                  "answers": sorted(rng.sample(range(4), 2))} for _ in range(N)]
SUBJECTS = {"physics": 11, "chemistry": 17, "law": 13, "history": 19}
for subject, size in SUBJECTS.items():
    data[subject] = [{"question": phrase(4), "choices": [phrase() for _ in range(4)], "answer": rng.randrange(4)}
                     for _ in range(size)]
paths = {name: write_jsonl(name, rows) for name, rows in data.items()}


def dataset(name):
    return f"dataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {paths[name]}\ntest_split: test\n"


common = "output_type: multiple_choice\n"
metrics = "metric_list:\n  - metric: acc\n  - metric: acc_norm\n"
tasks = {
    "synth_int": dataset("int") + common + 'doc_to_text: "Q: {{question}}\\nA:"\ndoc_to_choice: "{{choices}}"\n'
                 'doc_to_target: "{{answer}}"\n' + metrics + "  - metric: brier_score\n",
    "synth_letter": dataset("letter") + common
                    + 'doc_to_text: "{{question}}\\nA. {{options[0]}}\\nB. {{options[1]}}\\nC. {{options[2]}}\\nD. {{options[3]}}\\nE. {{options[4]}}\\nAnswer:"\n'
                      'doc_to_choice: ["A", "B", "C", "D", "E"]\ndoc_to_target: "{{answer}}"\n' + metrics,
    "synth_text": dataset("text") + common + 'doc_to_text: "Q: {{question}}\\nA:"\ndoc_to_choice: "{{choices}}"\n'
                  'doc_to_target: "{{answer_text}}"\n' + metrics,
    "synth_template": dataset("template") + common + 'doc_to_text: "Goal: {{goal}}\\nSolution:"\n'
                      'doc_to_choice: "{{[sol1, sol2]}}"\ndoc_to_target: "{{[sol1, sol2][label]}}"\n' + metrics,
    "synth_dict": dataset("dict") + common + 'doc_to_text: "Question: {{question}}\\nAnswer:"\n'
                  'doc_to_choice: "{{choices.text}}"\ndoc_to_target: "{{choices.label.index(answerKey)}}"\n' + metrics,
    "synth_filters": dataset("int") + common + 'doc_to_text: "Q: {{question}}\\nA:"\ndoc_to_choice: "{{choices}}"\n'
                     'doc_to_target: "{{answer}}"\n' + metrics
                     + "filter_list:\n  - name: first\n    filter:\n      - function: take_first\n"
                       "  - name: again\n    filter:\n      - function: take_first\n",
    "synth_mi": dataset("int") + common + 'doc_to_text: "Q: {{question}}\\nA:"\ndoc_to_choice: "{{choices}}"\n'
                'doc_to_target: "{{answer}}"\nmetric_list:\n  - metric: acc\n  - metric: acc_mutual_info\n',
    "synth_multi": dataset("multi") + common + 'doc_to_text: "Q: {{question}}\\nA:"\ndoc_to_choice: "{{choices}}"\n'
                   'doc_to_target: "{{answers}}"\nmetric_list:\n  - metric: acc\n',
    "synth_sub_a": dataset("int") + common + 'doc_to_text: "Question: {{question}}\\nAnswer:"\ndoc_to_choice: "{{choices}}"\n'
                   'doc_to_target: "{{answer}}"\n' + metrics,
    "synth_sub_b": dataset("text") + common + 'doc_to_text: "Question: {{question}}\\nAnswer:"\ndoc_to_choice: "{{choices}}"\n'
                   'doc_to_target: "{{answer_text}}"\n' + metrics,
}
for subject in SUBJECTS:
    tasks[f"synth_mmlu_{subject}"] = (dataset(subject) + common + 'doc_to_text: "{{question}}\\nAnswer:"\ndoc_to_choice: "{{choices}}"\n'
                                     'doc_to_target: "{{answer}}"\n' + metrics)
task_dir = work / "tasks"
task_dir.mkdir(exist_ok=True)
for name, body in tasks.items():
    (task_dir / f"{name}.yaml").write_text(f"task: {name}\n" + body, encoding="utf-8")
# Groups aggregate their subtasks' metrics from 0.4.3 on; 0.4.2 knows no aggregate_metric_list.
aggregate = ("aggregate_metric_list:\n  - metric: acc\n    aggregation: mean\n    weight_by_size: true\n"
             if NEW_HARNESS else "")
(task_dir / "synth_group.yaml").write_text("group: synth_group\ntask:\n  - synth_sub_a\n  - synth_sub_b\n" + aggregate,
                                          encoding="utf-8")

for group, alias, members in [("synth_mmlu_stem", "stem", ["synth_mmlu_physics", "synth_mmlu_chemistry"]),
                              ("synth_mmlu_humanities", "humanities", ["synth_mmlu_law", "synth_mmlu_history"]),
                              ("synth_mmlu", None, ["synth_mmlu_stem", "synth_mmlu_humanities"])]:
    body = f"group: {group}\n" + (f"group_alias: {alias}\n" if alias else "") + "task:\n" + "".join(f"  - {m}\n" for m in members)
    (task_dir / f"{group}.yaml").write_text(body + aggregate, encoding="utf-8")

model = work / "tiny-gpt2"
if not model.exists():
    subprocess.run([sys.executable, str(Path(__file__).with_name("build_model.py")), str(model), *map(str, paths.values())],
                   check=True)

# lm-eval 0.4.2 loads evaluate's "exact_match" at import: a local module stands in for the hub's.
shutil.copytree(Path(__file__).with_name("offline") / "exact_match", work / "exact_match", dirs_exist_ok=True)
env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")


def evaluate(task_list, output, *extra, pretrained="tiny-gpt2"):
    command = [sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={pretrained},dtype=float32",
               "--tasks", ",".join(task_list), "--include_path", str(task_dir), "--device", "cpu", "--batch_size", "8",
               "--log_samples", "--output_path", output, "--seed", "0", *extra]
    print("+", " ".join(command), flush=True)
    subprocess.run(command, cwd=work, env=env, check=True)


out = fixtures / tag
all_tasks = ["synth_int", "synth_letter", "synth_text", "synth_template", "synth_dict", "synth_filters", "synth_mi",
             "synth_multi", "synth_group"]
evaluate(all_tasks, str(out / "folder"))
# 0.4.2 names its files without a timestamp, so a second evaluation would overwrite the first: own folder.
evaluate(["synth_int"], str(out / ("folder" if NEW_HARNESS else "folder-2shot")), "--num_fewshot", "2")
evaluate(["synth_int"], str(out / "file-layout" / "eval.json"), "--limit", "10")
# Groups of groups (MMLU's layout) beside another group and a plain task, by a checkpoint path; a
# second evaluation 1-shot (0.4.2 overwrites untimestamped files: its own folder).
evaluate(["synth_mmlu", "synth_group", "synth_int"], str(out / "groups"), pretrained=str(model))
evaluate(["synth_mmlu"], str(out / ("groups" if NEW_HARNESS else "groups-1shot")), "--num_fewshot", "1", pretrained=str(model))
