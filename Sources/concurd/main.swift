import ConcurDaemon

ConcurdCommand.run()
