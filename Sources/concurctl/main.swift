import ConcurClient

ConcurctlCommand.main()
