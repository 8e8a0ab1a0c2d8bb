package demo

// DefaultCallers are the demo callers: numbers of configs/demo/directory.json
// in the many shapes PBXs deliver them (E.164, spaces and dashes, the 00
// international prefix, national numbers that need the default region DE),
// plus callers the directory does not know, withheld callers and the
// switchboard two demo customers share. configs/demo/README.md lists who is
// who.
func DefaultCallers() []Caller {
	return []Caller{
		{Number: "+48 601-234-567", Name: "NOWAK BUDOWNICTWO"}, // Nowak Budownictwo, Tomasz Nowak
		{Number: "0048 601 234 567"},                           // the same number with the 00 prefix
		{Number: "+48 22 123 45 67"},                           // Nowak Budownictwo, Ewa Zielińska
		{Number: "030 1234567", Name: "Brandt Metallbau"},      // national DE: Brandt Metallbau, Jörg Brandt
		{Number: "(040) 345 67 89"},                            // national DE: Hoffmann Logistik, Frank Hoffmann
		{Number: "0049 69 24681358"},                           // Rhein-Main Facility Services (credit hold), Julia Neumann
		{Number: "+49 171 2345678"},                            // Klaus Richter, private customer
		{Number: "+1 (415) 555-0134", Name: "BAYVIEW FAB"},     // Bayview Fabrication, Megan O'Connor
		{Number: "+44 20 7946 0321"},                           // Harrow & Finch Facilities, Eleanor Finch
		{Number: "+447911123456"},                              // Oliver Bennett, private customer
		{Number: "+33 4 78 12 34 56", Name: "MARCHAND J"},      // Ateliers Marchand, Julien Marchand
		{Number: "+43 512 123456"},                             // Alpenbau Huber, Florian Huber
		{Number: "+41 44 123 45 67"},                           // Zürcher Feinmechanik, Urs Meier
		{Number: "+31 30 123 4567"},                            // Van der Berg Installatietechniek, Jeroen van der Berg
		{Number: "0341 2345670", Name: "Gewerbehof Plagwitz"},  // shared switchboard: Lindner Druck and Saxonia Verpackung
		{Number: "+49 89 99887766"},                            // unknown
		{Number: "+33 6 12 34 56 78"},                          // unknown
		{Number: "+44 161 496 0999", Name: "WIRELESS CALLER"},  // unknown
		{Withheld: true},
		{Withheld: true},
	}
}
