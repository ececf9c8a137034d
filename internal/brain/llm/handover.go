package llm

import (
	"slices"
	"strings"
	"unicode"
)

// asksForHuman reports whether a user's message plainly asks for a person ("human please",
// "I want to talk to a real person", "quiero hablar con un agente").
//
// This check is deliberate, not a stand-in for the model: it is cheap, answers at once, costs no
// call, and works the same with every model — including small local ones that follow the
// handover instruction badly, and endpoints that refuse tools altogether. The model's
// handover_to_human tool still covers everything said less plainly. So the check stays narrow:
//   - a short message (a few words) holding a word that names a person of the team ("agent",
//     "human", "operador", "Mitarbeiter"), unless it is a question about the bot ("are you
//     human?") or someone's own ("my agent");
//   - "talk", "speak", "connect" and their translations whose object is a person ("speak with
//     someone", "connect me to an agent", "parler à un conseiller"); "I speak Spanish, can
//     someone help?" is not one;
//   - a few fixed phrases ("real person", "live agent", "echte Person").
//
// A message with a negation ("I don't want an agent") is left to the model. A false positive
// costs a human reading the conversation; a false negative costs nothing, since the model
// decides.
func asksForHuman(text string) bool {
	if len(text) > 500 {
		return false // a long message is about something; let the model read it
	}
	words := tokens(text)
	if len(words) == 0 || slices.ContainsFunc(words, negations.has) {
		return false
	}
	for _, p := range humanPhrases {
		if containsRun(words, p) {
			return true
		}
	}
	for i, w := range words {
		if talkVerbs.has(w) && personFollows(words[i+1:]) {
			return true
		}
	}
	if len(words) > 6 || aboutTheBot(words) {
		return false
	}
	for i, w := range words {
		if teamWords.has(w) && (i == 0 || !qualifiers.has(words[i-1])) {
			return true
		}
	}
	return false
}

// personFollows reports whether words start with a person, past the little words between a
// verb and its object: "to a real person", "con un agente", "me through to someone".
func personFollows(words []string) bool {
	for _, w := range words {
		switch {
		case persons.has(w):
			return true
		case !fillers.has(w):
			return false
		}
	}
	return false
}

// tokens splits text into lower-case words; apostrophes vanish, so "don't" is "dont" and
// "quelqu'un" is "quelquun".
func tokens(text string) []string {
	text = strings.NewReplacer("'", "", "’", "").Replace(strings.ToLower(text))
	return strings.FieldsFunc(text, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) })
}

// aboutTheBot reports a question about what the user is talking to: "are you human?".
func aboutTheBot(words []string) bool {
	for _, q := range [][]string{{"are", "you"}, {"r", "u"}, {"is", "this"}, {"is", "it"}, {"eres"}, {"êtes", "vous"}, {"es", "tu"}, {"bist", "du"}, {"sind", "sie"}, {"sei"}, {"você", "é"}} {
		if containsRun(words, q) {
			return true
		}
	}
	return false
}

// containsRun reports whether run occurs in words, word after word.
func containsRun(words, run []string) bool {
	for i := 0; i+len(run) <= len(words); i++ {
		if slices.Equal(words[i:i+len(run)], run) {
			return true
		}
	}
	return false
}

type wordSet map[string]bool

func (s wordSet) has(w string) bool { return s[w] }

func set(lists ...[]string) wordSet {
	s := wordSet{}
	for _, l := range lists {
		for _, w := range l {
			s[w] = true
		}
	}
	return s
}

// The vocabulary: English, Spanish, Portuguese, French, German, Italian and Greek. Add words
// here, lower-case and without apostrophes.
var (
	// teamWords name a person of the team: alone in a short message they are a request.
	teamWordList = []string{
		"human", "humans", "agent", "agents", "operator", "representative", "rep", "staff",
		"humano", "humana", "agente", "operador", "operadora", "asesor", "asesora", "atendente",
		"humain", "conseiller", "conseillère", "opérateur", "operateur",
		"mensch", "menschen", "mitarbeiter", "mitarbeiterin", "kundenberater",
		"operatore", "umano", "persona",
		"άνθρωπο", "άνθρωπος", "εκπρόσωπο", "υπάλληλο",
	}
	teamWords = set(teamWordList)

	// persons may be what a talk verb is about: "talk to someone".
	persons = set(teamWordList, []string{
		"person", "someone", "somebody", "anyone", "anybody",
		"alguien", "pessoa", "alguém", "alguem",
		"personne", "quelquun", "qualcuno", "jemandem", "κάποιον",
	})

	talkVerbs = set([]string{
		"talk", "speak", "chat", "connect", "transfer", "put",
		"hablar", "comunicarme", "falar", "parler", "parlare", "μιλήσω",
	})

	// fillers may stand between a talk verb and its person.
	fillers = set([]string{
		"to", "with", "me", "us", "through", "a", "an", "the", "some", "one", "actual", "real", "live", "please",
		"con", "com", "à", "avec", "al", "ao", "au", "un", "una", "uno", "um", "uma", "une", "per", "vero", "vera", "verdadeira",
		"με", "σε", "έναν", "ένα", "μια", "ένας",
	})

	humanPhrases = [][]string{
		{"real", "person"}, {"real", "human"}, {"live", "agent"}, {"live", "person"},
		{"human", "agent"}, {"human", "being"}, {"customer", "service", "representative"},
		{"persona", "real"}, {"pessoa", "real"}, {"vraie", "personne"}, {"persona", "reale"},
		{"echte", "person"}, {"echten", "menschen"}, {"echter", "mensch"},
		{"mit", "einem", "menschen"}, {"mit", "einem", "mitarbeiter"}, {"mit", "jemandem", "sprechen"},
		{"πραγματικό", "άνθρωπο"},
	}

	negations = set([]string{
		"not", "no", "dont", "doesnt", "didnt", "cant", "cannot", "wont", "isnt", "never", "without", "nobody",
		"nunca", "sin", "não", "nao", "sem",
		"pas", "jamais", "sans",
		"nicht", "kein", "keinen", "keine", "ohne",
		"non", "senza", "mai",
		"δεν", "όχι", "χωρίς",
	})

	// qualifiers before a team word make it someone else's: "my agent", "travel agent".
	qualifiers = set([]string{
		"my", "our", "your", "his", "her", "their", "travel", "insurance", "estate", "secret",
		"mi", "mis", "tu", "su", "meu", "minha", "seu", "sua", "mon", "ma", "ton", "son", "notre",
		"mein", "meine", "meinem", "dein", "mio", "mia", "tuo",
	})
)
