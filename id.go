package parley

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"hash/fnv"
	"time"
)

// NewID returns a new UUID, version 7: the first 48 bits are the Unix time in milliseconds, so
// rows keyed by it are inserted in roughly ascending order and indexes stay compact; the other
// 74 bits are random, so IDs cannot be guessed.
func NewID() string { return newIDAt(time.Now().UnixMilli()) }

// newIDAt is NewID at a given time. The time is read once: its two halves read at two moments
// could straddle a carry of the low 16 bits, and the ID would then claim a time 65 s away.
func newIDAt(ms int64) string {
	var u [16]byte
	rand.Read(u[6:]) // crypto/rand.Read never fails on the platforms Go supports.
	binary.BigEndian.PutUint16(u[4:], uint16(ms))
	binary.BigEndian.PutUint32(u[0:], uint32(ms>>16))
	u[6] = 0x70 | u[6]&0x0f // version 7
	u[8] = 0x80 | u[8]&0x3f // RFC 9562 variant
	return formatUUID(u)
}

// NewRandomID returns a new UUID, version 4, for identifiers that must not reveal when they were
// made (request IDs shown to callers need not be ordered).
func NewRandomID() string {
	var u [16]byte
	rand.Read(u[:])
	u[6] = 0x40 | u[6]&0x0f
	u[8] = 0x80 | u[8]&0x3f
	return formatUUID(u)
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

// ParseID reports whether s is a UUID in its canonical 36-character form and returns it in lower
// case, the only form parley stores. Braces, URNs and other spellings are refused: an ID from
// outside is either exactly right or unknown.
func ParseID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	var b [36]byte
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", false
			}
		default:
			switch {
			case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
			case 'A' <= c && c <= 'F':
				c += 'a' - 'A'
			default:
				return "", false
			}
		}
		b[i] = c
	}
	return string(b[:]), true
}

// Partitions is the number of partitions sessions are spread over. Background work (webhook
// delivery, brain replies) is owned per partition by one process at a time, which is what keeps a
// session's events in order across processes. Changing it would move sessions between owners, so
// it is fixed.
const Partitions = 64

// PartitionOf returns the partition of a session.
func PartitionOf(sessionID string) int {
	h := fnv.New32a()
	h.Write([]byte(sessionID))
	return int(h.Sum32() % Partitions)
}
