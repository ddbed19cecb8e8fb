"""One module per ``refindex`` subcommand."""
