package auth

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
)

// page is one of the small pages a person sees during sign-in: what
// happened, and the one thing to do next.
type page struct {
	Title   string
	Message string
	// Link and LinkText: where to go next (default: sign in again).
	Link, LinkText string
	// Form, when set, is the action of a POST form with a sign-out button.
	Form string
}

// with fills the %s of the message with detail (escaped when rendered).
func (p page) with(detail string) page {
	p.Message = fmt.Sprintf(p.Message, detail)
	return p
}

var (
	pageNotAgent      = page{Title: "Not an agent here", Message: "Your account %s is signed in at your organisation's identity provider, but it is not an agent here. Ask IT to set it up as an agent, or sign in with another account."}
	pageStale         = page{Title: "Sign-in expired", Message: "This sign-in is no longer valid: it took too long, was used already, or was started in another browser."}
	pageIdPRefused    = page{Title: "Sign-in refused", Message: "The identity provider refused the sign-in (%s)."}
	pageFailed        = page{Title: "Sign-in failed", Message: "The identity provider's answer could not be checked, so you are not signed in. If this happens again, tell IT the time it happened."}
	pageUnavailable   = page{Title: "Sign-in unavailable", Message: "The identity provider cannot be reached just now. Try again in a minute; if it persists, tell IT."}
	pageBusy          = page{Title: "Sign-in unavailable", Message: "Too many sign-ins are under way just now. Try again in a minute."}
	pageSignedOut     = page{Title: "Signed out", Message: "You are signed out of screenpop."}
	pageConfirmLogout = page{Title: "Sign out", Message: "Sign out of screenpop? Calls will no longer pop up in this browser."}
)

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · screenpop</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem;color:#222}
a,button{font:inherit}button{padding:.4rem 1rem}</style>
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{if .Form}}<form method="post" action="{{.Form}}"><button type="submit">Sign out</button></form>{{end}}
{{if .Link}}<p><a href="{{.Link}}">{{.LinkText}}</a></p>{{end}}
</html>
`))

// render writes p with status. The pages load nothing and may not be
// framed.
func (p page) render(w http.ResponseWriter, status int) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
