import ConcurDaemon

ConcurdCommand.main()
