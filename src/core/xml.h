/*
 * xml.h - checks and escaping for the text telua writes into TwiML.
 *
 * XML 1.0 (Fifth Edition) section 2.2 "Characters": a document may hold
 * only #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF],
 * so a C0 control other than tab, LF and CR, U+FFFE, U+FFFF, a surrogate or
 * an ill-formed UTF-8 sequence cannot be written at all.
 *
 * Escaping follows what the official twilio-node library (xmlbuilder 13)
 * writes, so telua's TwiML is byte-comparable with it: in text
 * & < > and CR are escaped; in attribute values & < " TAB LF CR are.
 */
#ifndef TELUA_XML_H
#define TELUA_XML_H

#include <stddef.h>

/* Returns (size_t)-1 when every byte is allowed, else the offset of the
 * first byte that XML forbids (or that starts bad UTF-8). */
size_t tl_xml_check(const char *s, size_t len);

/* Escapes s into dst (room for 6 * len bytes); attr selects attribute
 * rules. Returns the bytes written. Input must have passed tl_xml_check. */
size_t tl_xml_escape(const char *s, size_t len, int attr, char *dst);

#endif
