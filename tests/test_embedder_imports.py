"""transformers imported by several threads at once (a server's warm-ups and its first upload's job)."""

import subprocess
import sys
import textwrap

RACE = textwrap.dedent(
    """
    import threading
    from index.embedders.imports import auto_model

    failures = []

    def load(get):
        try:
            get()
        except Exception as exc:
            failures.append(repr(exc))

    threads = [threading.Thread(target=load, args=(auto_model,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(failures)
    """
)


def test_threads_importing_transformers_at_once_all_get_it():
    """Without the lock, a fresh interpreter failed this 3 times in 3 ("cannot import name 'AutoModel'")."""
    for _ in range(2):  # each try is a fresh interpreter: the race is only in the first import
        run = subprocess.run([sys.executable, "-c", RACE], capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-2000:]
        assert run.stdout.strip() == "[]", run.stdout
