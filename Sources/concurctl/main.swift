import ConcurClient

ConcurctlCommand.run()
