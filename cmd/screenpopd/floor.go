package main

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	// floor.time_zone names an IANA zone: the binary carries the zone
	// database, for machines (containers) without one.
	_ "time/tzdata"

	"github.com/screenpop/screenpop/aggregator"
	"github.com/screenpop/screenpop/configs"
	"github.com/screenpop/screenpop/floor"
	"github.com/screenpop/screenpop/pop"
)

// newFloor builds the supervisors' floor view: fed by the dispatcher
// (Observer) and the hub (the pages' acknowledgements), shared with the
// other daemons through Redis when there is one. It runs after the hub,
// the Redis client and the history are built, before the dispatcher.
func (m *Main) newFloor(daemon string) (*floor.Floor, error) {
	cfg := m.cfg
	opts := floor.Options{
		Config:     cfg.Floor,
		Daemon:     daemon,
		LineName:   m.lineName,
		Pages:      m.hub,
		Agents:     func() map[string]string { return m.config().Agents.Names },
		Health:     m.floorHealth,
		Logger:     m.logger.With("component", "floor"),
		Registerer: m.reg,
	}
	for _, t := range cfg.Telephony {
		opts.Sources = append(opts.Sources, t.Name)
	}
	for _, name := range cfg.Lines {
		if name = strings.TrimSpace(name); name != "" && !slices.Contains(opts.LineNames, name) {
			opts.LineNames = append(opts.LineNames, name)
		}
	}
	slices.Sort(opts.LineNames)
	if len(cfg.History.Dispositions) > 0 {
		// Agents are in wrap-up only when dispositions are asked of them.
		opts.WrapUps = m.history
	}
	if m.redis != nil {
		var sealer floor.Sealer
		if m.keys != nil {
			sealer = m.keys
		}
		share, err := floor.NewRedisShare(m.redis, cfg.Redis.KeyPrefix, sealer)
		if err != nil {
			return nil, fmt.Errorf("%s: redis: %w", cfg.File, err)
		}
		opts.Share = share
	}
	f, err := floor.New(opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.File, err)
	}
	return f, nil
}

// lineName is the configured name of the line a call dialled (its DID),
// from the running configuration; "" when it is none of lines:.
func (m *Main) lineName(did string) string {
	lines := m.config().Lines
	if name, ok := lines[did]; ok {
		return strings.TrimSpace(name)
	}
	return strings.TrimSpace(lines[strings.TrimSpace(did)])
}

// floorHealth is how this daemon's PBX connections, data sources, Redis
// and history are, from memory: statuses only, the reasons stay in the
// log and /readyz.
func (m *Main) floorHealth() []floor.Health {
	var out []floor.Health
	for _, c := range m.calls {
		status := floor.HealthOK
		if r, ok := c.source.(readiness); ok && r.Ready() != nil {
			status = floor.HealthDown
		}
		out = append(out, floor.Health{Kind: floor.KindPBX, Name: c.name, Status: status})
	}
	for _, s := range m.agg.Health() {
		status := floor.HealthOK
		switch {
		case s.Breaker == aggregator.BreakerOpen:
			status = floor.HealthDown
		case s.Breaker == aggregator.BreakerHalfOpen:
			status = floor.HealthRecovering
		case s.Failures > 0:
			status = floor.HealthDegraded
		}
		out = append(out, floor.Health{Kind: floor.KindSource, Name: s.Name, Status: status})
	}
	if m.bus != nil {
		status := floor.HealthOK
		if m.bus.Ready() != nil {
			status = floor.HealthDown
		}
		out = append(out, floor.Health{Kind: floor.KindRedis, Name: "redis", Status: status})
	}
	status := floor.HealthOK
	if m.history.Healthy() != nil {
		status = floor.HealthDown
	}
	return append(out, floor.Health{Kind: floor.KindHistory, Name: m.config().History.Type, Status: status})
}

// supervisorRoles are what decides who opens the floor view: the roles
// of the person's sign-in and those agents.roles gives them now (a
// reload that takes the role away closes their page).
func (m *Main) supervisorRoles(a pop.Agent) []string {
	out := slices.Clone(a.Roles)
	for _, r := range m.config().Agents.Roles[a.ID] {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// floorHandler serves /supervisor/: the page to anyone, the floor to
// supervisors, signed in as agents are (the hub's checks).
func (m *Main) floorHandler() http.Handler {
	return m.floor.Handler(floor.HandlerOptions{
		Gate:   m.hub,
		Roles:  m.supervisorRoles,
		Logger: m.logger.With("component", "floor"),
	})
}

// announceFloor prints, in a demo, the floor view's link of every agent
// agents.roles makes a supervisor.
func (m *Main) announceFloor(base string, cfg *configs.Config) {
	var sups []string
	for _, id := range slices.Sorted(maps.Keys(cfg.Agents.Roles)) {
		if _, known := cfg.Agents.Names[id]; known && slices.Contains(cfg.Agents.Roles[id], floor.Role) {
			sups = append(sups, id)
		}
	}
	if len(sups) == 0 {
		return
	}
	fmt.Fprintln(m.opts.Stdout, "The floor view (calls waiting, service level, agents), for supervisors:")
	for _, id := range sups {
		tok, err := m.auth.Issue(id, cfg.Agents.Names[id], []string{"agent"}, cfg.Auth.TokenTTL)
		if err != nil {
			m.logger.Error("cannot issue demo token", "agent", id, "err", err)
			continue
		}
		fmt.Fprintf(m.opts.Stdout, "  supervisor %s (%s): %s/supervisor/#token=%s\n", id, cfg.Agents.Names[id], base, tok)
	}
}
