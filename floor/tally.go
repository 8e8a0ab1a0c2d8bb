package floor

import (
	"sync"
	"time"
)

// memoryTally keeps the day's counts of this daemon's calls: the counts
// of a daemon alone, and what a daemon shows while the shared Redis does
// not answer. It keeps today and yesterday (a call that rang before
// midnight may still end after it).
type memoryTally struct {
	mu   sync.Mutex
	days map[string]*dayTally
}

type dayTally struct {
	flags  map[string]Flags // by call
	counts Counts
}

func newMemoryTally() *memoryTally { return &memoryTally{days: map[string]*dayTally{}} }

// add adds records, each call's flags merged bit by bit with what was
// added before, and forgets the days before yesterday of today.
func (t *memoryTally) add(today time.Time, records []Record) {
	t.mu.Lock()
	defer t.mu.Unlock()
	keep := map[string]bool{
		today.Format(time.DateOnly):                   true,
		today.AddDate(0, 0, -1).Format(time.DateOnly): true,
	}
	for _, r := range records {
		if !keep[r.Day] {
			continue
		}
		d := t.days[r.Day]
		if d == nil {
			d = &dayTally{flags: map[string]Flags{}}
			t.days[r.Day] = d
		}
		old := d.flags[r.CallID]
		d.counts.add(old, r.Flags)
		d.flags[r.CallID] = old | r.Flags
	}
	for day := range t.days {
		if !keep[day] {
			delete(t.days, day)
		}
	}
}

// counts are day's counts.
func (t *memoryTally) counts(day string) Counts {
	t.mu.Lock()
	defer t.mu.Unlock()
	if d := t.days[day]; d != nil {
		return d.counts
	}
	return Counts{}
}
