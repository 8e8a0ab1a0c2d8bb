package aggregator

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	screenpop "github.com/screenpop/screenpop"
)

// sections merges the sources' outcomes into the card's sections, in
// display order, each source's data in configuration order.
func (r *cardRun) sections() []screenpop.CardSection {
	out := make([]screenpop.CardSection, 0, len(r.st.sections))
	for _, layout := range r.st.sections {
		out = append(out, r.section(layout))
	}
	return out
}

// section merges the outcomes of the sources of one section, which have
// all settled.
func (r *cardRun) section(layout sectionLayout) screenpop.CardSection {
	// Each card gets its own copy of the roles: the dispatcher keeps
	// cards, and a card shared by reference must not change another.
	sec := screenpop.CardSection{Name: layout.name, Title: layout.title, Roles: slices.Clone(layout.roles)}
	var (
		worst                     screenpop.SectionStatus
		anyOK, anyEmpty, anyFresh bool
		anyCached                 bool
		oldest                    time.Time // of the cached answers
		failures, skips           []string
		took                      time.Duration
	)
	for _, i := range layout.sources {
		o, rt := r.outcomes[i], r.st.sources[i]
		took = max(took, o.took)
		switch o.status {
		case screenpop.SectionOK:
			anyOK = true
			addContent(&sec, rt.spec, o.records)
		case screenpop.SectionEmpty:
			anyEmpty = true
		case screenpop.SectionSkipped:
			if !slices.Contains(skips, o.reason) {
				skips = append(skips, o.reason)
			}
		default:
			failures = append(failures, o.reason)
			if severity(o.status) > severity(worst) {
				worst = o.status
			}
		}
		if o.status == screenpop.SectionOK || o.status == screenpop.SectionEmpty {
			anyCached = anyCached || o.cached
			anyFresh = anyFresh || !o.cached
			if o.cached && !o.fetchedAt.IsZero() && (oldest.IsZero() || o.fetchedAt.Before(oldest)) {
				oldest = o.fetchedAt
			}
		}
	}
	switch {
	case worst != "":
		// Whatever the other sources returned stays on the card.
		sec.Status = worst
		sec.Error = strings.Join(failures, "; ")
	case anyOK:
		sec.Status = screenpop.SectionOK
	case anyEmpty:
		sec.Status = screenpop.SectionEmpty
	default:
		sec.Status = screenpop.SectionSkipped
		sec.Error = strings.Join(skips, "; ")
	}
	// "From cache" only when nothing shown is fresher.
	sec.Cached = anyCached && !anyFresh
	if sec.Cached {
		sec.CachedAt = oldest
	}
	sec.TookMS = took.Milliseconds()
	return sec
}

// severity orders the failing statuses: an error says more is wrong than
// a timeout, which says more than a source that was not asked.
func severity(s screenpop.SectionStatus) int {
	switch s {
	case screenpop.SectionError:
		return 3
	case screenpop.SectionTimeout:
		return 2
	case screenpop.SectionUnavailable:
		return 1
	}
	return 0
}

// addContent adds what one source answered to its section: the first
// record as fields, or all records as a list.
func addContent(sec *screenpop.CardSection, spec SourceSpec, records []Record) {
	m := spec.Mapping
	fields := m.Fields
	if len(fields) == 0 {
		fields = allColumns(records, m.Mode == ModeList)
	}
	if m.Mode == ModeList {
		list := screenpop.List{Key: m.Key, Label: m.Label, Columns: make([]screenpop.Column, len(fields))}
		for i, f := range fields {
			list.Columns[i] = screenpop.Column{Key: f.From, Label: f.Label, Format: f.Format}
		}
		shown := records[:min(len(records), m.MaxRows)]
		list.Truncated = len(records) > len(shown)
		list.Rows = make([]map[string]any, len(shown))
		for i, rec := range shown {
			// Only the mapped columns reach the browser: a query may select
			// internal columns the agent is not meant to see.
			row := make(map[string]any, len(fields))
			for _, f := range fields {
				row[f.From] = cardValue(rec[f.From])
			}
			list.Rows[i] = row
		}
		sec.Lists = append(sec.Lists, list)
		return
	}
	rec := records[0]
	sec.Fields = slices.Grow(sec.Fields, len(fields))
	for _, f := range fields {
		sec.Fields = append(sec.Fields, screenpop.Field{Key: f.From, Label: f.Label, Value: cardValue(rec[f.From]), Format: f.Format})
	}
}

// allColumns lists the columns of the first record (fields) or of every
// record (list), alphabetically, with derived labels.
func allColumns(records []Record, every bool) []FieldMap {
	if !every || len(records) == 1 {
		records = records[:1]
	}
	names := make([]string, 0, len(records[0]))
	if len(records) == 1 {
		for k := range records[0] {
			names = append(names, k)
		}
	} else {
		seen := make(map[string]bool, len(records[0]))
		for _, rec := range records {
			for k := range rec {
				if !seen[k] {
					seen[k] = true
					names = append(names, k)
				}
			}
		}
	}
	slices.Sort(names)
	out := make([]FieldMap, len(names))
	for i, n := range names {
		out[i] = FieldMap{From: n, Label: deriveLabel(n)}
	}
	return out
}

// cardValue makes a record value safe to send as JSON: the card must always
// encode, or no agent sees it. NaN and infinities become null, bytes become
// text, and anything encoding/json refuses becomes its printed form.
func cardValue(v any) any {
	switch x := v.(type) {
	case nil, string, bool, json.Number, time.Time,
		int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return x
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
		return x
	case float32:
		return cardValue(float64(x))
	case []byte:
		return string(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = cardValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = cardValue(e)
		}
		return out
	case fmt.Stringer:
		return x.String()
	}
	if _, err := json.Marshal(v); err != nil {
		return fmt.Sprint(v)
	}
	return v
}

// text reads a directory column as a string, whatever type the source
// gave it (a numeric id from JSON is a float64, from SQL an int64).
func text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return strings.TrimSpace(x)
	case json.Number:
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32)
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	case []byte:
		return strings.TrimSpace(string(x))
	case fmt.Stringer:
		return x.String()
	}
	return strings.TrimSpace(fmt.Sprint(v))
}

// tags reads the directory's tags column: a list, or a comma-separated
// string.
func tags(v any) []string {
	var raw []string
	switch x := v.(type) {
	case nil:
		return nil
	case []string:
		raw = x
	case []any:
		for _, e := range x {
			raw = append(raw, text(e))
		}
	default:
		raw = strings.Split(text(v), ",")
	}
	var out []string
	for _, t := range raw {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}
