from cli.walletctl import app

app()
