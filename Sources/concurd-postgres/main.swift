import ConcurDaemon
import ConcurdPostgres

installPostgresQueue()
ConcurdCommand.run()
