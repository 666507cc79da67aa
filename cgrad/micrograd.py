"""python -m cgrad.micrograd SCRIPT.py [ARGS]: runs an unmodified micrograd
script on cgrad, with `micrograd`, `micrograd.engine` and `micrograd.nn`
resolved to cgrad's (`cgrad`, `cgrad.engine`, `cgrad.nn`)."""
import runpy
import sys
import types


def install():
    """Makes `import micrograd...` give cgrad's modules in this process."""
    import cgrad
    import cgrad.engine
    import cgrad.nn
    package = types.ModuleType("micrograd", "cgrad standing in for micrograd")
    package.__path__ = []  # a package, so that `import micrograd.engine` works
    package.engine = cgrad.engine
    package.nn = cgrad.nn
    package.__version__ = cgrad.__version__
    sys.modules.update({"micrograd": package, "micrograd.engine": cgrad.engine,
                        "micrograd.nn": cgrad.nn})


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    install()
    sys.argv = list(argv)
    runpy.run_path(argv[0], run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
