package screenpop

// MaskPhone hides all but the last three digits of a phone number, for logs:
// "+4930123456" becomes "+*******456". Call-center logs are read by many
// people; a caller's full number is personal data.
func MaskPhone(number string) string {
	const keep = 3
	digits := 0
	for _, r := range number {
		if r >= '0' && r <= '9' {
			digits++
		}
	}
	out := make([]rune, 0, len(number))
	seen := 0
	for _, r := range number {
		if r >= '0' && r <= '9' {
			seen++
			if digits-seen >= keep {
				out = append(out, '*')
				continue
			}
		}
		out = append(out, r)
	}
	return string(out)
}
