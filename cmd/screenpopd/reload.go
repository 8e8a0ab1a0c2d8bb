package main

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/screenpop/screenpop/aggregator"
	"github.com/screenpop/screenpop/configs"
)

// config is the configuration running. Reload replaces it; read it afresh
// each time rather than keeping it.
func (m *Main) config() *configs.Config {
	m.cfgMu.RLock()
	defer m.cfgMu.RUnlock()
	return m.cfg
}

// agentName is an agent's display name ("answered by Alice") in the
// running configuration, so that a renamed agent shows after a reload.
func (m *Main) agentName(id string) string { return m.config().Agents.Names[id] }

// Reload swaps in a new configuration: every source is built anew (secrets
// re-read from their files, the environment as the process got it), the
// aggregator swaps them in at once, and nothing is changed when any part is
// refused. Agents stay connected. What a reload cannot change (the listener,
// sign-in, Redis, the API, the history, telephony and the endpoint mapping) keeps running
// as it was and is logged as needing a restart; the running configuration
// keeps those parts as they were, so the warning repeats at each reload
// until the restart. Database pools no source uses any more are closed.
func (m *Main) Reload(next *configs.Config) error {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	old := m.cfg // only Reload writes m.cfg, under reloadMu

	// A refused build may have registered pools for DSNs that are not
	// used: whatever happens, keep only those of the sources running.
	defer func() { m.pools.Prune(runningSources(m.agg.Config())) }()

	ac, err := aggregatorConfig(next, m.pools, m.opts.Env, m.logger)
	if err != nil {
		return err
	}
	if err := m.agg.Reload(ac); err != nil {
		return fmt.Errorf("%s: %w", next.File, err)
	}

	d := diffConfig(old, next)
	m.logLevel.Set(logLevel(next.LogLevel))
	m.cfgMu.Lock()
	m.cfg = runningConfig(old, next)
	m.cfgMu.Unlock()

	applied := strings.Join(d.Applied, "; ")
	if applied == "" {
		applied = "no change (sources rebuilt, secrets re-read)"
	}
	m.logger.Info("configuration reloaded", "file", next.File, "sources", len(next.Sources), "applied", applied)
	if len(d.Restart) > 0 {
		m.logger.Warn("some changes take effect only after a restart", "file", next.File, "changed", strings.Join(d.Restart, "; "))
	}
	return nil
}

// runningSources are the sources of an aggregator configuration.
func runningSources(ac aggregator.Config) []aggregator.Source {
	var srcs []aggregator.Source
	if ac.Directory != nil {
		srcs = append(srcs, ac.Directory.Source)
	}
	for _, s := range ac.Sources {
		srcs = append(srcs, s.Source)
	}
	return srcs
}

// runningConfig is next with the parts a reload cannot change taken from
// old: what the daemon actually runs after the reload.
func runningConfig(old, next *configs.Config) *configs.Config {
	run := *next
	run.Listen = old.Listen
	run.PublicURL = old.PublicURL
	run.Auth = old.Auth
	run.Redis = old.Redis
	run.API = old.API
	run.History = old.History
	run.Telephony = old.Telephony
	run.Agents.Patterns = old.Agents.Patterns
	run.Agents.Table = old.Agents.Table
	return &run
}

// configDiff is what a reload changes: Applied takes effect at once,
// Restart only at the next start.
type configDiff struct {
	Applied []string
	Restart []string
}

// diffConfig compares two configurations part by part. Each entry names
// the part as it is written in the file; values are shown only where they
// are not secrets and are short (durations, the listen address).
func diffConfig(old, next *configs.Config) configDiff {
	var d configDiff
	restart := func(format string, args ...any) { d.Restart = append(d.Restart, fmt.Sprintf(format, args...)) }
	applied := func(format string, args ...any) { d.Applied = append(d.Applied, fmt.Sprintf(format, args...)) }

	// Restart needed.
	if old.Listen != next.Listen {
		restart("listen %s -> %s", old.Listen, next.Listen)
	}
	if old.PublicURL != next.PublicURL {
		restart("public_url %q -> %q", old.PublicURL, next.PublicURL)
	}
	if old.LogFormat != next.LogFormat {
		restart("log_format %q -> %q", old.LogFormat, next.LogFormat)
	}
	for _, k := range changedFields(old.Auth, next.Auth) {
		restart("auth.%s", k)
	}
	switch {
	case old.Redis == nil && next.Redis != nil:
		restart("redis added")
	case old.Redis != nil && next.Redis == nil:
		restart("redis removed")
	case old.Redis != nil:
		for _, k := range changedFields(*old.Redis, *next.Redis) {
			restart("redis.%s", k)
		}
	}
	for _, k := range changedFields(old.API, next.API) {
		restart("api.%s", k)
	}
	// The store, its dispositions and wrap-up rules are fixed at start.
	for _, k := range changedFields(old.History, next.History) {
		restart("history.%s", k)
	}
	// The floor's threshold and day are the ledger's, fixed at start.
	for _, k := range changedFields(old.Floor, next.Floor) {
		restart("floor.%s", k)
	}
	// The admin listener is opened once, at start.
	for _, k := range changedFields(old.Admin, next.Admin) {
		restart("admin.%s", k)
	}
	oldTel, nextTel := map[string]configs.Telephony{}, map[string]configs.Telephony{}
	var telNames []string
	for _, t := range old.Telephony {
		oldTel[t.Name] = t
		telNames = append(telNames, t.Name)
	}
	for _, t := range next.Telephony {
		nextTel[t.Name] = t
		if _, ok := oldTel[t.Name]; !ok {
			telNames = append(telNames, t.Name)
		}
	}
	for _, name := range telNames {
		o, inOld := oldTel[name]
		n, inNext := nextTel[name]
		switch {
		case !inNext:
			restart("telephony %s removed", name)
		case !inOld:
			restart("telephony %s added", name)
		default:
			var keys []string
			if o.Type != n.Type {
				keys = append(keys, "type")
			}
			keys = append(keys, changedOptions(o.Options, n.Options)...)
			if len(keys) > 0 {
				restart("telephony %s changed (%s)", name, strings.Join(keys, ", "))
			}
		}
	}
	if !slices.Equal(old.Agents.Patterns, next.Agents.Patterns) {
		restart("agents.patterns")
	}
	if !maps.Equal(old.Agents.Table, next.Agents.Table) {
		restart("agents.table")
	}

	// Applied at once.
	if old.LogLevel != next.LogLevel {
		applied("log_level %q -> %q", old.LogLevel, next.LogLevel)
	}
	if old.Region != next.Region {
		applied("region %q -> %q", old.Region, next.Region)
	}
	if old.Deadline != next.Deadline {
		applied("deadline %s -> %s", old.Deadline, next.Deadline)
	}
	if old.HistoryLimit != next.HistoryLimit {
		applied("history_limit %d -> %d", old.HistoryLimit, next.HistoryLimit)
	}
	if !maps.Equal(old.Lines, next.Lines) {
		applied("lines")
	}
	// A section's roles are a list: sections compare in depth.
	if !reflect.DeepEqual(old.Sections, next.Sections) {
		applied("sections")
	}
	switch {
	case old.Directory == nil && next.Directory != nil:
		applied("directory %s added", next.Directory.Name)
	case old.Directory != nil && next.Directory == nil:
		applied("directory %s removed", old.Directory.Name)
	case old.Directory != nil:
		if keys := changedSource(old.Directory, next.Directory); len(keys) > 0 {
			applied("directory changed (%s)", strings.Join(keys, ", "))
		}
	}
	oldSrc, nextSrc := map[string]*configs.Source{}, map[string]*configs.Source{}
	var srcNames []string
	for i := range old.Sources {
		oldSrc[old.Sources[i].Name] = &old.Sources[i]
		srcNames = append(srcNames, old.Sources[i].Name)
	}
	for i := range next.Sources {
		nextSrc[next.Sources[i].Name] = &next.Sources[i]
		if _, ok := oldSrc[next.Sources[i].Name]; !ok {
			srcNames = append(srcNames, next.Sources[i].Name)
		}
	}
	for _, name := range srcNames {
		o, n := oldSrc[name], nextSrc[name]
		switch {
		case n == nil:
			applied("source %s removed", name)
		case o == nil:
			applied("source %s added", name)
		default:
			if keys := changedSource(o, n); len(keys) > 0 {
				applied("source %s changed (%s)", name, strings.Join(keys, ", "))
			}
		}
	}
	if !maps.Equal(old.Agents.Names, next.Agents.Names) {
		applied("agents.names")
	}
	if !maps.EqualFunc(old.Agents.Roles, next.Agents.Roles, slices.Equal) {
		applied("agents.roles")
	}
	return d
}

// changedSource names the keys of a source that differ, common ones first.
func changedSource(o, n *configs.Source) []string {
	oc, nc := *o, *n
	oc.Line, nc.Line, oc.Options, nc.Options = 0, 0, nil, nil
	return append(changedFields(oc, nc), changedOptions(o.Options, n.Options)...)
}

// changedFields names, by their YAML keys, the fields of two structs of the
// same type that differ. Fields without a key (yaml:"-") are ignored; those
// decoded inline (a source's aggregator.SourceSpec) add their own.
func changedFields[T any](o, n T) []string {
	return changedValues(reflect.ValueOf(o), reflect.ValueOf(n))
}

func changedValues(ov, nv reflect.Value) []string {
	var keys []string
	for i := range ov.NumField() {
		key, opts, _ := strings.Cut(ov.Type().Field(i).Tag.Get("yaml"), ",")
		switch {
		case opts == "inline":
			keys = append(keys, changedValues(ov.Field(i), nv.Field(i))...)
		case key == "" || key == "-":
		case !reflect.DeepEqual(ov.Field(i).Interface(), nv.Field(i).Interface()):
			keys = append(keys, key)
		}
	}
	return keys
}

// changedOptions names the keys of two option mappings whose values differ,
// in the order they are written (removed keys last). Comments, layout and
// line numbers do not count.
func changedOptions(o, n *yaml.Node) []string {
	ov, ok := decodeOptions(o)
	nv, ok2 := decodeOptions(n)
	if !ok || !ok2 {
		if reflect.DeepEqual(ov, nv) {
			return nil
		}
		return []string{"options"}
	}
	var keys []string
	seen := map[string]bool{}
	for _, k := range optionKeys(n) {
		seen[k] = true
		if !reflect.DeepEqual(ov[k], nv[k]) {
			keys = append(keys, k)
		}
	}
	for _, k := range optionKeys(o) {
		if !seen[k] {
			keys = append(keys, k)
		}
	}
	return keys
}

func decodeOptions(n *yaml.Node) (map[string]any, bool) {
	m := map[string]any{}
	if n == nil {
		return m, true
	}
	if err := n.Decode(&m); err != nil {
		return nil, false
	}
	return m, true
}

func optionKeys(n *yaml.Node) []string {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var keys []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		keys = append(keys, n.Content[i].Value)
	}
	return keys
}
