"""`jicofo-stress`: the load generator and benchmark runner (scenario, local stack, runner, report).

    scenario.py  the knobs (flags or a HOCON/JSON file), bounded
    local.py     the local stack: test Prosody, our focus and jicofo-bridge-sim as child processes
    runner.py    simulated participants, churn, screen shares, faults, progress, the figures
    report.py    percentiles, /proc figures, error breakdown, the human report
    cli.py       the command line
"""
