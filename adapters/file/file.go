// Package file is the data-source kind for small lists kept in a CSV or JSON
// file: a list of VIP numbers, a supplier table exported from a spreadsheet,
// and the demo data set. The whole file is loaded when the source is built
// and indexed by one column, so a lookup is a map access.
package file

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/screenpop/screenpop/adapters"
	"github.com/screenpop/screenpop/aggregator"
	"github.com/screenpop/screenpop/configs"
)

// Sample is an example configuration of a file source, for
// `screenpopd sample file`.
//
//go:embed sample.yaml
var Sample []byte

// Options are the keys of a `type: file` source besides the common ones.
type Options struct {
	// Path of the file; relative paths resolve against the configuration
	// file's folder (or the embedded demo files).
	Path string `yaml:"path"`
	// Format is csv or json; default from the file's extension.
	Format string `yaml:"format"`
	// Match is the column (CSV) or field (JSON) compared with the lookup
	// value; default: the name of Param.
	Match string `yaml:"match"`
	// Param is the lookup parameter compared with Match: phone, national,
	// region or customer_id (default).
	Param string `yaml:"param"`
	// Delimiter separates CSV fields; default ",". Spreadsheets set to a
	// German or French locale export with ";".
	Delimiter string `yaml:"delimiter"`
	// Reload re-reads the file when its modification time changes, so IT
	// can replace a list without restarting the daemon.
	Reload bool `yaml:"reload"`
	// Search makes a directory file searchable by agents (search.go).
	Search *SearchOptions `yaml:"search"`
}

// Source serves the records of one file, indexed by the Match column.
type Source struct {
	fsys   fs.FS
	file   string // name inside fsys
	shown  string // the path as configured, for errors and logs
	format string
	match  string
	param  string
	comma  rune
	reload bool
	logger *slog.Logger

	search *searcher // nil: no search configured

	mu      sync.RWMutex
	index   map[string][]aggregator.Record
	records []aggregator.Record // in the file's order, for the search
	modTime time.Time

	// reloading lets one Fetch re-read a changed file while the others keep
	// answering from the index they have.
	reloading sync.Mutex
	// refused is the modification time of a version that failed to load,
	// and statFailing says the file could not be found: both make a broken
	// file reported once, not at every call. Guarded by reloading.
	refused     time.Time
	statFailing bool
}

var _ aggregator.Source = (*Source)(nil)

// New builds a file source from its options and loads the file. It is an
// adapters.Factory. Reading one local file does not block the way connecting
// to a database does, and loading now means `config check` reports a broken
// file with its line before the daemon starts.
func New(spec adapters.Spec) (aggregator.Source, error) {
	var o Options
	if spec.Options != nil {
		if err := configs.DecodeStrict(spec.Options, &o); err != nil {
			return nil, err
		}
	}
	return newSource(spec, o)
}

func newSource(spec adapters.Spec, o Options) (*Source, error) {
	s := &Source{reload: o.Reload, logger: spec.Logger}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	// Each error is placed at the option to fix.
	at := func(key string, format string, args ...any) error {
		return configs.KeyError(spec.Options, key, format, args...)
	}

	if o.Path == "" {
		return nil, at("path", "path is required: the CSV or JSON file to read")
	}
	s.shown = o.Path
	if filepath.IsAbs(o.Path) {
		// fs.FS names are always relative; an absolute path gets a
		// file system of its own folder.
		s.fsys, s.file = os.DirFS(filepath.Dir(o.Path)), filepath.Base(o.Path)
	} else {
		if spec.Files == nil {
			return nil, at("path", "path %q is relative but there is no folder to resolve it in; use an absolute path", o.Path)
		}
		name := path.Clean(filepath.ToSlash(o.Path))
		if !fs.ValidPath(name) {
			return nil, at("path", "path %q leaves the configuration's folder; use an absolute path", o.Path)
		}
		s.fsys, s.file = spec.Files, name
	}

	s.format = strings.ToLower(o.Format)
	if s.format == "" {
		switch strings.ToLower(path.Ext(s.file)) {
		case ".csv":
			s.format = "csv"
		case ".json":
			s.format = "json"
		default:
			return nil, at("path", "format is required: %q does not end in .csv or .json (use format: csv or format: json)", o.Path)
		}
	}
	if s.format != "csv" && s.format != "json" {
		return nil, at("format", "format %q is not supported (use csv or json)", o.Format)
	}

	s.param = o.Param
	if s.param == "" {
		s.param = "customer_id"
	}
	if !slices.Contains(aggregator.ParamNames, s.param) {
		return nil, at("param", "param %q: %w (use one of: %s)", o.Param, aggregator.ErrUnknownParam, strings.Join(aggregator.ParamNames, ", "))
	}
	s.match = o.Match
	if s.match == "" {
		s.match = s.param
	}

	s.comma = ','
	if o.Delimiter != "" {
		r, size := utf8.DecodeRuneInString(o.Delimiter)
		if size != len(o.Delimiter) || r == '"' || r == '\r' || r == '\n' || r == utf8.RuneError {
			return nil, at("delimiter", "delimiter %q must be one character other than a quote or a line break", o.Delimiter)
		}
		if s.format != "csv" {
			return nil, at("delimiter", "delimiter is only for CSV files")
		}
		s.comma = r
	}

	if o.Search != nil {
		var err error
		if s.search, err = newSearcher(spec.Options, *o.Search); err != nil {
			return nil, err
		}
	}

	index, records, modTime, err := s.load()
	if err != nil {
		key := "path"
		var me matchError
		if errors.As(err, &me) && o.Match != "" {
			key = "match"
		}
		return nil, at(key, "%w", err)
	}
	s.index, s.records, s.modTime = index, records, modTime
	return s, nil
}

// matchError is a file in which no record has the match column: IT fixes
// match, or path when it names the wrong file.
type matchError struct{ error }

// Fetch returns every record whose Match column equals the key's Param
// value; none when the key has no such value.
func (s *Source) Fetch(ctx context.Context, key aggregator.Key) ([]aggregator.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	value, ok := key.Param(s.param)
	if !ok {
		return nil, nil
	}
	if s.reload {
		s.reloadIfChanged()
	}
	s.mu.RLock()
	found := s.index[value]
	s.mu.RUnlock()
	if len(found) == 0 {
		return nil, nil
	}
	// Copies: the caller may add or drop keys, and the index is shared by
	// every call.
	out := make([]aggregator.Record, len(found))
	for i, r := range found {
		out[i] = maps.Clone(r)
	}
	return out, nil
}

// reloadIfChanged re-reads the file when its modification time moved. A
// file that fails to load (half written, broken by hand) is logged and the
// previous contents keep being served: a list being edited must not blank
// a card section.
func (s *Source) reloadIfChanged() {
	if !s.reloading.TryLock() {
		return // another call is re-reading it
	}
	defer s.reloading.Unlock()
	info, err := fs.Stat(s.fsys, s.file)
	if err != nil {
		if !s.statFailing {
			s.logger.Warn("file source: cannot read the file; keeping the records loaded before", "path", s.shown, "err", err)
			s.statFailing = true
		}
		return
	}
	s.statFailing = false
	s.mu.RLock()
	same := info.ModTime().Equal(s.modTime)
	s.mu.RUnlock()
	if same || info.ModTime().Equal(s.refused) {
		return
	}
	index, records, modTime, err := s.load()
	if err != nil {
		s.logger.Warn("file source: the changed file does not load; keeping the records loaded before", "path", s.shown, "err", err)
		s.refused = info.ModTime()
		return
	}
	s.refused = time.Time{}
	s.mu.Lock()
	s.index, s.records, s.modTime = index, records, modTime
	s.mu.Unlock()
	s.logger.Info("file source: reloaded", "path", s.shown, "records", countRecords(index))
}

func countRecords(index map[string][]aggregator.Record) int {
	n := 0
	for _, rs := range index {
		n += len(rs)
	}
	return n
}

// load reads and indexes the file. Errors start with the path as
// configured so that IT knows which file to open.
func (s *Source) load() (map[string][]aggregator.Record, []aggregator.Record, time.Time, error) {
	f, err := s.fsys.Open(s.file)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if !filepath.IsAbs(s.shown) {
				// Relative to what is the question IT asks next.
				return nil, nil, time.Time{}, fmt.Errorf("%s: file not found in the configuration file's folder (a relative path is read from there; or give an absolute one)", s.shown)
			}
			return nil, nil, time.Time{}, fmt.Errorf("%s: file not found", s.shown)
		}
		return nil, nil, time.Time{}, fmt.Errorf("%s: %w", s.shown, err)
	}
	defer f.Close()
	var modTime time.Time
	if info, err := f.Stat(); err == nil {
		modTime = info.ModTime()
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, nil, time.Time{}, fmt.Errorf("%s: %w", s.shown, err)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // spreadsheet exports start with a BOM

	var records []aggregator.Record
	if s.format == "csv" {
		records, err = s.parseCSV(data)
	} else {
		records, err = parseJSON(data)
	}
	if err != nil {
		return nil, nil, time.Time{}, fmt.Errorf("%s: %w", s.shown, err)
	}

	index := make(map[string][]aggregator.Record)
	for _, r := range records {
		for _, v := range matchValues(r[s.match]) {
			index[v] = append(index[v], r)
		}
	}
	if len(index) == 0 && len(records) > 0 {
		return nil, nil, time.Time{}, matchError{fmt.Errorf("%s: no record has a value in %q (match); fields of the first record: %s",
			s.shown, s.match, strings.Join(slices.Sorted(maps.Keys(records[0])), ", "))}
	}
	return index, records, modTime, nil
}

// matchValues returns the strings a record is found under. A list (JSON
// array) is found under each of its elements, so one record can carry
// several phone numbers.
func matchValues(v any) []string {
	switch v := v.(type) {
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := scalarString(e); ok {
				out = append(out, s)
			}
		}
		return out
	default:
		if s, ok := scalarString(v); ok {
			return []string{s}
		}
		return nil
	}
}

// scalarString renders a JSON or CSV scalar the way it appears in a Key: a
// customer number stored as the JSON number 1042 is found as "1042".
func scalarString(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, v != ""
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}

// parseJSON reads an array of objects, naming the record and line of the
// first problem.
func parseJSON(data []byte) ([]aggregator.Record, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil, errors.New("empty file: want a JSON array of objects")
		}
		return nil, jsonError(data, err, dec.InputOffset())
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, fmt.Errorf("line %d: want a JSON array of objects ([{...}, ...]), got %s", lineAt(data, dec.InputOffset()), describeToken(tok))
	}
	var out []aggregator.Record
	for n := 1; dec.More(); n++ {
		start := dec.InputOffset()
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("record %d: %w", n, jsonError(data, err, dec.InputOffset()))
		}
		var rec map[string]any
		if err := json.Unmarshal(raw, &rec); err != nil || rec == nil {
			line := lineAt(data, start+leadingSpace(data[start:]))
			return nil, fmt.Errorf("record %d (line %d): want an object, got %s", n, line, describeJSON(raw))
		}
		out = append(out, rec)
	}
	if _, err := dec.Token(); err != nil {
		return nil, jsonError(data, err, dec.InputOffset())
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("line %d: unexpected data after the closing ]", lineAt(data, dec.InputOffset()))
	}
	return out, nil
}

// leadingSpace is how many separator bytes precede the next value.
func leadingSpace(b []byte) int64 {
	return int64(len(b) - len(bytes.TrimLeft(b, " \t\r\n,")))
}

// jsonError turns a decoder error into "line N: ...", using the offset the
// error carries when it has one.
func jsonError(data []byte, err error, offset int64) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		offset = syn.Offset
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF {
		return errors.New("unexpected end of file: the JSON array is not closed")
	}
	return fmt.Errorf("line %d: %s", lineAt(data, offset), strings.TrimPrefix(err.Error(), "json: "))
}

// lineAt is the 1-based line of byte offset off.
func lineAt(data []byte, off int64) int {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	if off < 0 {
		off = 0
	}
	return bytes.Count(data[:off], []byte("\n")) + 1
}

func describeToken(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		if t == '{' {
			return "an object (wrap it in [ ])"
		}
		return fmt.Sprintf("%q", string(t))
	case string:
		return "a string"
	case float64, json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%v", tok)
}

func describeJSON(raw json.RawMessage) string {
	tok, err := json.NewDecoder(bytes.NewReader(raw)).Token()
	if err != nil {
		return "invalid JSON"
	}
	if d, ok := tok.(json.Delim); ok && d == '[' {
		return "an array"
	}
	return describeToken(tok)
}

// cleanNumber is a number a spreadsheet wrote that is safe to read as one:
// no sign-prefixed phone numbers ("+4930...") and no leading zeros
// ("00123" is an identifier, not 123).
var cleanNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]{0,14})(\.[0-9]+)?$`)

// parseCSV reads a header row and the records under it. Values are strings,
// except clean numbers outside the match column, which become float64 like
// JSON numbers so that money and quantities format as numbers on the card.
func (s *Source) parseCSV(data []byte) ([]aggregator.Record, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.Comma = s.comma
	r.ReuseRecord = false
	header, err := r.Read()
	if err != nil {
		if err == io.EOF {
			return nil, errors.New("empty file: want a header row naming the columns")
		}
		return nil, csvError(err)
	}
	seen := map[string]bool{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		if h == "" {
			return nil, fmt.Errorf("line 1: column %d has no name in the header row", i+1)
		}
		if seen[h] {
			return nil, fmt.Errorf("line 1: column %q appears twice in the header row", h)
		}
		seen[h] = true
		header[i] = h
	}
	if !seen[s.match] {
		return nil, matchError{fmt.Errorf("line 1: no column %q (match) in the header row; columns: %s", s.match, strings.Join(header, ", "))}
	}
	var out []aggregator.Record
	for {
		row, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, csvError(err)
		}
		rec := make(aggregator.Record, len(header))
		for i, v := range row {
			col := header[i]
			if col != s.match && cleanNumber.MatchString(v) {
				if f, err := strconv.ParseFloat(v, 64); err == nil {
					rec[col] = f
					continue
				}
			}
			rec[col] = v
		}
		out = append(out, rec)
	}
}

// csvError reports encoding/csv's errors as "line N: ...".
func csvError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		if errors.Is(pe.Err, csv.ErrFieldCount) {
			return fmt.Errorf("line %d: wrong number of fields (the header row has a different number)", pe.Line)
		}
		return fmt.Errorf("line %d: %v", pe.Line, pe.Err)
	}
	return err
}
