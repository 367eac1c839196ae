from .repl import run_demo_loop
