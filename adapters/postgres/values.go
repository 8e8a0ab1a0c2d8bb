package postgres

import (
	"database/sql/driver"
	"encoding/hex"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/screenpop/screenpop/adapters"
)

// convertValue turns what pgx decoded into the plain Go values the rest of
// the daemon (card formatting, the Redis cache, JSON to the browser) can
// handle without knowing about pgtype:
//
//   - integers become int64, float4/float8 float64, text string, bool bool;
//   - numeric becomes float64 when it has at most 15 significant digits (a
//     float64 gives those back exactly, so 1234.56 stays 1234.56), and
//     otherwise the exact decimal as a string ("12345678901234567.89"), so no
//     digit of a large amount or an account number is silently changed;
//     NaN and ±Infinity become the strings "NaN", "Infinity", "-Infinity";
//   - timestamp, timestamptz and date become time.Time (date at midnight UTC);
//   - arrays become []any of converted elements;
//   - uuid becomes its canonical string, json/jsonb what encoding/json makes
//     of it, inet/cidr their string, bytea stays []byte;
//   - anything else (interval, time, ranges, ...) becomes PostgreSQL's own
//     text representation.
func convertValue(v any) any {
	switch v := v.(type) {
	case nil, string, bool, int64, float64, time.Time, []byte:
		return v
	case int16:
		return int64(v)
	case int32:
		return int64(v)
	case int:
		return int64(v)
	case uint32:
		return int64(v)
	case float32:
		return float64(v)
	case pgtype.Numeric:
		return convertNumeric(v)
	case [16]byte:
		return formatUUID(v)
	case netip.Prefix:
		if v.IsSingleIP() {
			return v.Addr().String()
		}
		return v.String()
	case netip.Addr:
		return v.String()
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = convertValue(e)
		}
		return out
	case map[string]any:
		// json/jsonb objects: already plain values.
		return v
	case pgtype.InfinityModifier:
		return v.String()
	case pgtype.Interval:
		return formatInterval(v)
	case pgtype.Range[any]:
		return formatRange(v)
	case driver.Valuer:
		dv, err := v.Value()
		if err != nil {
			return fmt.Sprint(v)
		}
		switch dv := dv.(type) {
		case nil:
			return nil
		case []byte:
			return string(dv)
		default:
			return convertValue(dv)
		}
	case fmt.Stringer:
		return v.String()
	default:
		// A type this package does not know: its text is at least
		// something the card, the cache and JSON can carry.
		return fmt.Sprint(v)
	}
}

// formatRange writes a range the way PostgreSQL does: "[1,3)", "(,5]", "empty".
func formatRange(r pgtype.Range[any]) any {
	if !r.Valid {
		return nil
	}
	if r.LowerType == pgtype.Empty {
		return "empty"
	}
	var b strings.Builder
	if r.LowerType == pgtype.Inclusive {
		b.WriteByte('[')
	} else {
		b.WriteByte('(')
	}
	if r.LowerType != pgtype.Unbounded {
		b.WriteString(rangeBound(r.Lower))
	}
	b.WriteByte(',')
	if r.UpperType != pgtype.Unbounded {
		b.WriteString(rangeBound(r.Upper))
	}
	if r.UpperType == pgtype.Inclusive {
		b.WriteByte(']')
	} else {
		b.WriteByte(')')
	}
	return b.String()
}

func rangeBound(v any) string {
	switch v := convertValue(v).(type) {
	case time.Time:
		if v.Hour() == 0 && v.Minute() == 0 && v.Second() == 0 && v.Nanosecond() == 0 {
			return v.Format(time.DateOnly)
		}
		return v.Format(time.RFC3339Nano)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	default:
		return fmt.Sprint(v)
	}
}

func convertNumeric(n pgtype.Numeric) any {
	if !n.Valid {
		return nil
	}
	switch {
	case n.NaN:
		return "NaN"
	case n.InfinityModifier == pgtype.Infinity:
		return "Infinity"
	case n.InfinityModifier == pgtype.NegativeInfinity:
		return "-Infinity"
	}
	dv, err := n.Value()
	if err != nil {
		return nil
	}
	text, _ := dv.(string)
	if adapters.SignificantDigits(text) <= adapters.MaxExactDigits {
		if f, err := strconv.ParseFloat(text, 64); err == nil && !math.IsInf(f, 0) {
			return f
		}
	}
	return text
}

func formatUUID(u [16]byte) string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

// formatInterval writes an interval the way PostgreSQL does by default
// ("1 year 2 mons 3 days 04:05:06"); pgx's own text form differs ("3 day").
func formatInterval(iv pgtype.Interval) any {
	if !iv.Valid {
		return nil
	}
	var parts []string
	unit := func(n int64, one, many string) {
		if n == 1 || n == -1 {
			parts = append(parts, fmt.Sprintf("%d %s", n, one))
		} else if n != 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, many))
		}
	}
	unit(int64(iv.Months/12), "year", "years")
	unit(int64(iv.Months%12), "mon", "mons")
	unit(int64(iv.Days), "day", "days")
	if us := iv.Microseconds; us != 0 || len(parts) == 0 {
		sign := ""
		if us < 0 {
			sign, us = "-", -us
		}
		clock := fmt.Sprintf("%s%02d:%02d:%02d", sign, us/3600e6, us/60e6%60, us/1e6%60)
		if frac := us % 1e6; frac != 0 {
			clock += strings.TrimRight(fmt.Sprintf(".%06d", frac), "0")
		}
		parts = append(parts, clock)
	}
	return strings.Join(parts, " ")
}
