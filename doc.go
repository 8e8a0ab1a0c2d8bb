// Package screenpop holds the domain types every stage of the daemon shares,
// so that telephony, aggregator and pop can talk to each other without
// importing one another:
//
//	telephony (CallEvent) -> aggregator (Card) -> pop (agent browsers)
//
// Nothing in this package does I/O. Implementations live in sub-packages named
// after what they depend on (telephony/ari, adapters/postgres, ...), and only
// cmd/screenpopd wires them together.
package screenpop
