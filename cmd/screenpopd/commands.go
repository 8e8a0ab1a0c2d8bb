package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/adapters/postgres"
	"github.com/screenpop/screenpop/aggregator"
	"github.com/screenpop/screenpop/configs"
	"github.com/screenpop/screenpop/history"
	"github.com/screenpop/screenpop/pop"
)

// exitCodeError makes main exit with code instead of 1: pbx check tells a
// PBX that fails (1) from a command line or configuration it cannot use (2).
type exitCodeError struct {
	code int
	err  error
}

func (e *exitCodeError) Error() string { return e.err.Error() }
func (e *exitCodeError) Unwrap() error { return e.err }

// exitCode is the process's exit status for an error run returned.
func exitCode(err error) int {
	var e *exitCodeError
	if errors.As(err, &e) {
		return e.code
	}
	return 1
}

// parseArgs parses fs's flags wherever they stand among args, as IT
// types them ("config check /etc/screenpop.yaml -connect"), and returns
// the other arguments. The flag package alone stops at the first of
// those and leaves every flag after it unread.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return rest, nil
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// configFileArg takes the configuration file from a lone argument
// ("config check FILE") when -config names no other. Anything else left
// over is an error: a file that would be ignored must not let the
// embedded demo be checked, or run, in its place.
func configFileArg(rest []string, configPath *string, usage string) error {
	switch {
	case len(rest) == 0:
		return nil
	case len(rest) == 1 && (*configPath == "" || *configPath == rest[0]):
		*configPath = rest[0]
		return nil
	case len(rest) == 1:
		return fmt.Errorf("two configuration files: -config %s and %s\n%s", *configPath, rest[0], usage)
	}
	return fmt.Errorf("unexpected argument %q\n%s", rest[1], usage)
}

// noArgs is an error for arguments a command does not take.
func noArgs(rest []string, usage string) error {
	if len(rest) == 0 {
		return nil
	}
	return fmt.Errorf("unexpected argument %q\n%s", rest[0], usage)
}

func loadConfig(path string) (*configs.Config, error) {
	if path == "" {
		return configs.Demo()
	}
	return configs.Load(path)
}

// configCheck validates a configuration the way the daemon would load it:
// the file, every source's options, every telephony source's options. It
// does no I/O beyond reading files, so it runs on IT's laptop too; with
// -connect it then asks every source (connectcheck.go).
func configCheck(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) string) error {
	fs := flag.NewFlagSet("config check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (default: the embedded demo configuration)")
	connect := connectFlags(fs) // -connect: see connectcheck.go
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := configFileArg(rest, configPath, configCheckUsage); err != nil {
		return err
	}
	cfg, err := loadConfig(*configPath)
	if *configPath != "" {
		// Every problem in one pass: the kinds' own options are checked
		// even when the rest of the file has problems.
		var problems configs.Errors
		cfg, problems, err = configs.LoadPartial(*configPath)
		if err == nil && cfg != nil {
			problems = append(problems, checkBuild(cfg, env)...)
		}
		if err == nil && len(problems) > 0 {
			err = problems.Sorted()
		}
	} else if err == nil {
		if problems := checkBuild(cfg, env); len(problems) > 0 {
			err = problems
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		if errs, ok := err.(configs.Errors); ok {
			fmt.Fprintf(stderr, "%d problem(s) found\n", len(errs))
		}
		return errReported
	}
	fmt.Fprintf(stdout, "%s: OK (%d telephony source(s), %d data source(s)%s)\n", cfg.File, len(cfg.Telephony), len(cfg.Sources), directoryNote(cfg))
	if *connect.enabled {
		return connect.run(ctx, cfg, stdout, env)
	}
	return nil
}

func directoryNote(cfg *configs.Config) string {
	if cfg.Directory == nil {
		return ", no directory: every caller will be unknown"
	}
	return ", directory " + cfg.Directory.Name
}

// checkBuild constructs everything NewMain would, without starting it, and
// returns every problem, each at the key it is about.
func checkBuild(cfg *configs.Config, env func(string) string) configs.Errors {
	logger := slog.New(slog.DiscardHandler)
	pools := postgres.NewPools(logger)
	defer pools.Close()
	var errs configs.Errors
	ac, err := aggregatorConfig(cfg, pools, env, logger)
	if err == nil && built(ac) {
		// The checks configs ran (aggregator.Config.Validate) again, and
		// what only the wiring adds.
		_, err = aggregator.New(ac, aggregator.Options{Logger: logger, Registerer: prometheus.NewRegistry()})
	}
	errs = append(errs, cfg.ErrorsIn("", err)...)
	if _, err := buildTelephony(cfg, env, logger, prometheus.NewRegistry()); err != nil {
		errs = append(errs, cfg.ErrorsIn("", err)...)
	}
	if _, err := evictTokens(cfg, env); err != nil {
		msg := strings.TrimPrefix(err.Error(), "api.evict_tokens_env: ")
		errs = append(errs, cfg.ErrorAt("api.evict_tokens_env", msg, ""))
	}
	errs = append(errs, historyProblems(cfg, env)...)
	// The client secret is read as the daemon would (configs checked the
	// options themselves).
	if _, err := signInOptions(cfg, env, nil); err != nil {
		errs = append(errs, cfg.ErrorsIn("auth", err)...)
	}
	errs = append(errs, distinctAPITokens(cfg, env)...)
	// The signing secret, read as the daemon reads it: a daemon that
	// would not start is not "OK".
	if _, err := signingSecret(cfg, env); err != nil {
		errs = append(errs, cfg.ErrorsIn("", err)...)
	}
	if cfg.Redis != nil {
		if _, err := redisKeys(cfg.Redis, env); err != nil {
			errs = append(errs, cfg.ErrorsIn("", err)...)
		}
	}
	return errs
}

// built says whether every source has its implementation: one without a
// type: has none, which configs has already reported.
func built(ac aggregator.Config) bool {
	if ac.Directory != nil && ac.Directory.Source == nil {
		return false
	}
	for _, s := range ac.Sources {
		if s.Source == nil {
			return false
		}
	}
	return true
}

// sourceTest asks one source for one phone number, the way a call would,
// and prints what came back. IT uses it to wire a new source.
func sourceTest(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) string) error {
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("source test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (default: the embedded demo configuration)")
	phone := fs.String("phone", "", "caller number, in any format the PBX may send")
	customer := fs.String("customer", "", "customer id (default: resolved through the directory)")
	const usage = "usage: screenpopd source test NAME -phone NUMBER [-customer ID] [-config FILE]"
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if name == "" && len(rest) > 0 {
		name, rest = rest[0], rest[1:]
	}
	if err := noArgs(rest, usage); err != nil {
		return err
	}
	if name == "" || (*phone == "" && *customer == "") {
		return errors.New(usage)
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return errReported
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	pools := postgres.NewPools(logger.With("component", "postgres"))
	defer pools.Close()
	ac, err := aggregatorConfig(cfg, pools, env, logger)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return errReported
	}
	agg, err := aggregator.New(ac, aggregator.Options{Logger: logger, Registerer: prometheus.NewRegistry()})
	if err != nil {
		return err
	}
	var spec *aggregator.SourceSpec
	if ac.Directory != nil && ac.Directory.Name == name {
		spec = ac.Directory
	}
	for i := range ac.Sources {
		if ac.Sources[i].Name == name {
			spec = &ac.Sources[i]
		}
	}
	if spec == nil {
		names := []string{}
		if ac.Directory != nil {
			names = append(names, ac.Directory.Name)
		}
		for _, s := range ac.Sources {
			names = append(names, s.Name)
		}
		return fmt.Errorf("no source named %q in %s (sources: %s)", name, cfg.File, strings.Join(names, ", "))
	}
	key := aggregator.Key{CustomerID: *customer}
	if *phone != "" {
		n, err := agg.Normalize(*phone)
		if err != nil {
			return fmt.Errorf("%q is not a phone number the daemon can use: %w", *phone, err)
		}
		key.Phone, key.National, key.Region = n.E164, n.National, n.Region
		fmt.Fprintf(stdout, "number:   %s -> %s (region %s, national %s)\n", *phone, n.E164, n.Region, n.National)
		if key.CustomerID == "" && spec != ac.Directory && ac.Directory != nil {
			card := agg.Build(ctx, screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "source-test", Caller: screenpop.Caller{Number: *phone}, At: time.Now()})
			if card.Customer != nil {
				key.CustomerID = card.Customer.ID
				fmt.Fprintf(stdout, "customer: %s (%s) via %s\n", card.Customer.ID, card.Customer.Name, ac.Directory.Name)
			} else {
				fmt.Fprintf(stdout, "customer: not resolved (%s)\n", card.Resolution)
			}
		}
	}
	if _, ok := key.Param(spec.Needs); !ok {
		// As on a card: a source whose lookup parameter the call lacks is
		// not asked (its section says skipped).
		give := "-phone NUMBER"
		if spec.Needs == "customer_id" {
			give = "-customer ID"
		}
		fmt.Fprintf(stdout, "source:   %s not asked: it looks up by %s (needs), which this lookup does not have (a card skips its section); give %s to ask it\n", name, spec.Needs, give)
		return nil
	}
	timeout := spec.Timeout // defaults applied by configs
	fctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	records, err := spec.Source.Fetch(fctx, key)
	took := time.Since(start)
	if err != nil {
		fmt.Fprintf(stdout, "source:   %s FAILED after %s: %v\n", name, took.Round(time.Millisecond), err)
		return errReported
	}
	fmt.Fprintf(stdout, "source:   %s answered %d record(s) in %s (timeout %s)\n", name, len(records), took.Round(time.Microsecond), timeout)
	for i, r := range records {
		if i == 20 {
			fmt.Fprintf(stdout, "... %d more\n", len(records)-20)
			break
		}
		keys := make([]string, 0, len(r))
		for k := range r {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(stdout, "record %d:\n", i+1)
		for _, k := range keys {
			v, _ := json.Marshal(r[k])
			fmt.Fprintf(stdout, "  %-20s %s\n", k, v)
		}
	}
	return nil
}

// sampleGroups are the groups of kinds `screenpopd sample` prints from. A
// kind's name is its `type:`, and one name may be a kind in both groups
// (http): `sample KIND` then asks which, `sample GROUP KIND` is always
// unambiguous.
var sampleGroups = []struct {
	name    string
	samples map[string][]byte
}{
	{"telephony", telephonySamples},
	{"source", samples},
}

// printSample prints a kind's embedded sample configuration:
// `screenpopd sample [telephony|source] KIND`, and the history block's
// with `screenpopd sample history`.
func printSample(args []string, stdout io.Writer) error {
	if len(args) == 1 && args[0] == "history" {
		// Not a kind: the history block (history/sample.yaml).
		_, err := stdout.Write(history.Sample)
		return err
	}
	var all []string
	for _, g := range sampleGroups {
		all = append(all, g.name+" kinds: "+kindNames(g.samples))
	}
	listed := strings.Join(all, "; ")
	switch len(args) {
	case 1:
		var groups, commands []string
		var sample []byte
		for _, g := range sampleGroups {
			if s, ok := g.samples[args[0]]; ok {
				groups, commands, sample = append(groups, "a "+g.name+" kind"), append(commands, "screenpopd sample "+g.name+" "+args[0]), s
			}
		}
		switch len(groups) {
		case 0:
			return fmt.Errorf("no kind %q (%s)", args[0], listed)
		case 1:
			_, err := stdout.Write(sample)
			return err
		}
		return fmt.Errorf("%q is %s: say which, %s", args[0], strings.Join(groups, " and "), strings.Join(commands, " or "))
	case 2:
		for _, g := range sampleGroups {
			if g.name != args[0] {
				continue
			}
			s, ok := g.samples[args[1]]
			if !ok {
				return fmt.Errorf("no %s kind %q (one of: %s)", g.name, args[1], kindNames(g.samples))
			}
			_, err := stdout.Write(s)
			return err
		}
	}
	return fmt.Errorf("usage: screenpopd sample [telephony|source] KIND (%s)", listed)
}

// issueToken signs an agent token with the configured secret, for
// installations that do not sign agents in through an identity provider yet.
func issueToken(args []string, stdout, stderr io.Writer, env func(string) string) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file")
	agent := fs.String("agent", "", "agent id, e.g. 1001")
	name := fs.String("name", "", "agent's display name")
	ttl := fs.Duration("ttl", 0, "validity (default: auth.token_ttl)")
	const usage = "usage: screenpopd token -agent ID [-name NAME] [-ttl 12h] [-config FILE]"
	if err := parseToolFlags(fs, args, usage); err != nil {
		return err
	}
	if *agent == "" {
		return errors.New(usage)
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return errReported
	}
	if cfg.Auth.SecretEnv == "" || env(cfg.Auth.SecretEnv) == "" {
		return fmt.Errorf("auth.secret_env is not set or its variable is empty: a token signed with a random secret would not be accepted by the running daemon")
	}
	if *ttl == 0 {
		*ttl = cfg.Auth.TokenTTL
	}
	if *name == "" {
		*name = cfg.Agents.Names[*agent]
	}
	auth, err := pop.NewTokenAuth([]byte(env(cfg.Auth.SecretEnv)))
	if err != nil {
		return err
	}
	tok, err := auth.Issue(*agent, *name, nil, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
