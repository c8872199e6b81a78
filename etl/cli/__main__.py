from etl.cli import app

app()
