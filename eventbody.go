package parley

import (
	"strconv"
	"unicode/utf8"
)

// appendEventBody appends b encoded exactly as Marshal encodes it, byte for byte, without
// reflection. Event bodies are rendered inside the transaction that causes them, which on
// SQLite is the single writer: there Marshal was a sixth of the writer's time per brain reply.
// TestEventBodyAsMarshal and FuzzEventBody hold it to Marshal.
//
// The JSON it embeds (the context, the responses) is appended as it is: it must be valid and
// compact, as everything parley encodes with Marshal is. Marshal would compact it again.
func appendEventBody(dst []byte, b *eventBody) []byte {
	dst = append(dst, `{"event_type":`...)
	dst = AppendJSONString(dst, b.EventType)
	dst = append(dst, `,"request_id":`...)
	dst = AppendJSONString(dst, b.RequestID)
	dst = append(dst, `,"session_id":`...)
	dst = AppendJSONString(dst, b.SessionID)
	if b.ExternalSessionID != "" {
		dst = append(dst, `,"external_session_id":`...)
		dst = AppendJSONString(dst, b.ExternalSessionID)
	}
	dst = append(dst, `,"integration_id":`...)
	dst = AppendJSONString(dst, b.IntegrationID)
	dst = append(dst, `,"desk_id":`...)
	dst = AppendJSONString(dst, b.DeskID)
	dst = append(dst, `,"context":`...)
	dst = appendRaw(dst, b.Context)
	dst = append(dst, `,"timestamp":`...)
	dst = strconv.AppendInt(dst, b.Timestamp, 10)
	f := &b.EventFields
	if f.MessageID != "" {
		dst = append(dst, `,"message_id":`...)
		dst = AppendJSONString(dst, f.MessageID)
	}
	if a := f.Agent; a != nil {
		dst = append(dst, `,"agent":{"agent_id":`...)
		dst = AppendJSONString(dst, a.ID)
		dst = append(dst, `,"agent_name":`...)
		dst = AppendJSONString(dst, a.Name)
		if a.Avatar != "" {
			dst = append(dst, `,"agent_avatar":`...)
			dst = AppendJSONString(dst, a.Avatar)
		}
		dst = append(dst, '}')
	}
	if f.Output != nil {
		dst = append(dst, `,"output":{"responses":`...)
		dst = appendRaw(dst, f.Output.Responses)
		dst = append(dst, '}')
	}
	if f.Action != "" {
		dst = append(dst, `,"action":`...)
		dst = AppendJSONString(dst, f.Action)
	}
	if len(f.MessageIDs) > 0 {
		dst = append(dst, `,"message_ids":[`...)
		for i, id := range f.MessageIDs {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendJSONString(dst, id)
		}
		dst = append(dst, ']')
	}
	for _, kv := range [...]struct{ key, value string }{
		{`,"status":`, f.Status}, {`,"closed_by":`, f.ClosedBy}, {`,"reason":`, f.Reason},
	} {
		if kv.value != "" {
			dst = append(dst, kv.key...)
			dst = AppendJSONString(dst, kv.value)
		}
	}
	return append(dst, '}')
}

// appendRaw appends JSON parley encoded itself; nothing is null, as Marshal writes it.
func appendRaw(dst, raw []byte) []byte {
	if len(raw) == 0 {
		return append(dst, "null"...)
	}
	return append(dst, raw...)
}

// AppendJSONString appends s as a JSON string the way Marshal writes it (HTML characters left
// as they are): quotes, backslashes and control characters escaped, invalid UTF-8 replaced by
// U+FFFD, and U+2028 and U+2029 escaped, since JavaScript reads them as line ends. It is for
// encoders written by hand where encoding/json costs too much, held to Marshal by tests.
func AppendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0 // s[start:i] is still to be copied as it is
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
