from agentsim.cli import app

app(prog_name="agentsim")
