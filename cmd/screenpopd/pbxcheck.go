package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/screenpop/screenpop/configs"
	"github.com/screenpop/screenpop/telephony/ari"
)

const pbxCheckUsage = "screenpopd pbx check [-config FILE] [-source NAME] [-wait 3s] [-json] [-app NAME]"

// pbxTarget is one telephony entry of type ari to check.
type pbxTarget struct {
	name string
	cfg  ari.Config
}

// pbxReport is one entry's report as -json prints it.
type pbxReport struct {
	Name string `json:"name"`
	ari.Report
}

// pbxCheck connects once to every telephony entry of type ari (or the one
// named) and reports what IT must fix on the PBX, line by line. Exit
// status: 0 without a FAIL, 1 with one, 2 when the command line or the
// configuration cannot be used (nothing was checked then).
func pbxCheck(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) string) error {
	fs := flag.NewFlagSet("pbx check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (default: the embedded demo configuration)")
	source := fs.String("source", "", "check only the telephony entry of this name (default: every entry of type ari)")
	wait := fs.Duration("wait", 3*time.Second, "while no call is live, how long to wait for one to see its channel snapshots")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	app := fs.String("app", "", "connect under this ARI application name instead of the configured one, to leave a running screenpopd undisturbed")
	if err := fs.Parse(args); err != nil {
		return &exitCodeError{code: 2, err: err}
	}
	if fs.NArg() > 0 {
		return &exitCodeError{code: 2, err: fmt.Errorf("unexpected argument %q\nusage: %s", fs.Arg(0), pbxCheckUsage)}
	}
	if *wait < 0 {
		return &exitCodeError{code: 2, err: fmt.Errorf("-wait must not be negative, got %s", *wait)}
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return &exitCodeError{code: 2, err: errReported}
	}
	targets, err := pbxTargets(cfg, *source, *app, env)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return &exitCodeError{code: 2, err: errReported}
	}

	reports := make([]pbxReport, 0, len(targets))
	failed := false
	for _, t := range targets {
		rep, err := ari.Check(ctx, t.cfg, *wait)
		if err != nil {
			// pbxTargets validated it: only a bug gets here.
			return &exitCodeError{code: 2, err: fmt.Errorf("telephony %s: %w", t.name, err)}
		}
		if ctx.Err() != nil {
			// Interrupted: what was found meanwhile is the interruption's.
			return fmt.Errorf("pbx check interrupted: %w", context.Cause(ctx))
		}
		failed = failed || rep.Failed()
		reports = append(reports, pbxReport{Name: t.name, Report: rep})
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Sources []pbxReport `json:"sources"`
			Failed  bool        `json:"failed"`
		}{reports, failed}); err != nil {
			return err
		}
	} else {
		printPBXReports(stdout, reports)
	}
	if failed {
		return errReported
	}
	return nil
}

// pbxTargets picks the entries to check and builds their configuration as
// the daemon would, reporting every configuration problem at once, before
// any connection.
func pbxTargets(cfg *configs.Config, source, app string, env func(string) string) ([]pbxTarget, error) {
	agentOf, errs := agentMapOf(cfg)
	var targets []pbxTarget
	var names []string
	for i, t := range cfg.Telephony {
		names = append(names, t.Name+" ("+t.Type+")")
		if source != "" && t.Name != source {
			continue
		}
		entry := fmt.Sprintf("telephony[%d]", i)
		if t.Type != "ari" {
			if source != "" {
				errs = append(errs, cfg.ErrorsIn(entry, fmt.Errorf("is of type %q: pbx check checks Asterisk (type ari) only", t.Type))...)
			}
			continue
		}
		c, err := ari.ConfigFromSpec(telephonySpec(t, env, agentOf, nil, nil))
		if err == nil && app != "" {
			c.App = app
			// -app is checked as app: would be; the source is not used.
			_, err = ari.New(c, nil, prometheus.NewRegistry())
		}
		if err != nil {
			errs = append(errs, cfg.ErrorsIn(entry, err)...)
			continue
		}
		targets = append(targets, pbxTarget{name: t.Name, cfg: c})
	}
	switch {
	case len(errs) > 0:
		return nil, errs
	case len(targets) > 0:
		return targets, nil
	case source != "":
		return nil, fmt.Errorf("%s: no telephony entry named %q (entries: %s)", cfg.File, source, strings.Join(names, ", "))
	}
	return nil, fmt.Errorf("%s: no telephony entry of type ari to check (entries: %s)", cfg.File, strings.Join(names, ", "))
}

// printPBXReports prints one aligned table per PBX, each problem's fix on
// the line below it.
func printPBXReports(w io.Writer, reports []pbxReport) {
	for i, r := range reports {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "telephony %s: %s, app %s\n", r.Name, r.URL, r.App)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		counts := map[ari.CheckStatus]int{}
		for _, l := range r.Lines {
			counts[l.Status]++
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", l.Status, l.Check, l.Found)
			if l.Fix != "" {
				fmt.Fprintf(tw, "  \t\tfix: %s\n", l.Fix)
			}
		}
		_ = tw.Flush()
		verdict := "OK"
		if counts[ari.CheckFail] > 0 {
			verdict = "FAILED"
		}
		fmt.Fprintf(w, "telephony %s: %s (%d ok, %d WARN, %d FAIL, %d info)\n", r.Name, verdict,
			counts[ari.CheckOK], counts[ari.CheckWarn], counts[ari.CheckFail], counts[ari.CheckInfo])
	}
}
