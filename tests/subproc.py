"""Running a Python program in a child process, for tests of programs that
could crash or hang the interpreter: the test asserts on the child's exit
status and output, so a regression fails the suite instead of killing it."""
import os
import pathlib
import signal
import subprocess
import sys
import textwrap

import cgrad

# The directory that holds the cgrad under test (a checkout or site-packages).
CGRAD_HOME = str(pathlib.Path(cgrad.__file__).resolve().parent.parent)


def child_env(**extra):
    """The environment of a child Python that imports this cgrad."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([CGRAD_HOME, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONFAULTHANDLER"] = "1"  # a crash prints the Python stack
    env.update(extra)
    return env


class Result:
    def __init__(self, returncode, stdout, stderr, timed_out):
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.timed_out = timed_out

    def __repr__(self):
        return (f"exit {self.returncode}{' (timed out)' if self.timed_out else ''}\n"
                f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}")


def run_python(code, timeout=120, **env):
    """Runs `code` (dedented) in a fresh interpreter; kills it after `timeout`
    seconds (a hang), its whole process group included (children it forked)."""
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=child_env(**env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        return Result(proc.returncode, out, err, False)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return Result(proc.returncode, out, err, True)


def assert_clean_run(result, stdout=None):
    """The child exited 0 without a hang or a Python error, and printed
    `stdout` exactly when given."""
    assert not result.timed_out, result
    assert result.returncode == 0, result
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr, result
    if stdout is not None:
        assert result.stdout == stdout, result
