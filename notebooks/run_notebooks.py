#!/usr/bin/env python3
"""Executes every notebook of notebooks/ (on the demo database) so that they never rot.

    run_notebooks.py            execute in temporary copies; fail on any error (CI)
    run_notebooks.py --update   execute in place, keeping the outputs (to commit them)

Needs nbclient, nbformat and ipykernel: `make notebooks` installs them in notebooks/.venv.
"""
import pathlib
import sys
import tempfile

import nbformat
from nbclient import NotebookClient

HERE = pathlib.Path(__file__).resolve().parent


def main():
    update = "--update" in sys.argv
    failures = 0
    paths = sorted(HERE.glob("*.ipynb"))
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        client = NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(HERE)}})
        try:
            client.execute()
        except Exception as error:  # the cell's traceback is in the message
            failures += 1
            print(f"FAILED {path.name}: {error}", file=sys.stderr)
            continue
        for cell in notebook.cells:
            cell.get("metadata", {}).pop("execution", None)
        target = path if update else pathlib.Path(tempfile.mkdtemp()) / path.name
        nbformat.write(notebook, target)
        print(f"ok {path.name} ({sum(c.cell_type == 'code' for c in notebook.cells)} code cells)")
    print(f"notebooks: {len(paths) - failures} passed, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
