import ConcurDaemon
import ConcurdPostgres

installPostgresQueue()
ConcurdCommand.main()
