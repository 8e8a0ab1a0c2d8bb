package telephony

import (
	screenpop "github.com/screenpop/screenpop"
)

// Namespaced returns a sink that hands every event on to sink with its
// CallID prefixed by the source's configured name ("pbx-a/1795435000.0")
// and its Source set to that name.
//
// Call IDs are only unique within one PBX: two Asterisk servers both have a
// channel 1795435000.0, and a CTI script may number its calls 1, 2, 3. Past
// this sink, the dispatcher, the Redis de-duplication and the call history
// key everything by CallID, so the ID must be unique in the daemon. Doing it
// once here, at the boundary, keeps every source simple (each knows only
// its PBX's IDs) and every consumer simple (each treats the ID as opaque).
//
// The prefix is always added, never checked for: a PBX's ID is the PBX's,
// and one that happens to start with "name/" is a different call from one
// that does not. Configuration guarantees names are unique and contain no
// '/', so two sources can never produce the same ID. Two daemons watching
// the same PBX must give it the same name, or Redis cannot tell that their
// pops are the same.
func Namespaced(name string, sink screenpop.CallSink) screenpop.CallSink {
	prefix := name + "/"
	return screenpop.CallSinkFunc(func(ev screenpop.CallEvent) {
		ev.CallID = prefix + ev.CallID
		ev.Source = name
		sink.HandleCall(ev)
	})
}
