package popstate

// Holders lists the agents who hold the pop of a call with its card,
// sorted: those whose Snapshot is not empty. A shared stream asks for
// their snapshots when it must put back what its store lost.
func (m *Machine) Holders() []string {
	seen := map[string]bool{}
	for _, c := range m.calls {
		if c.card == nil {
			continue
		}
		for a := range c.holders {
			seen[a] = true
		}
	}
	return sortedKeys(seen)
}
