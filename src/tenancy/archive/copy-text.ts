// PostgreSQL's COPY text format, read back into values: for the embedded database, whose wire
// protocol takes no COPY FROM STDIN, an archive's rows are inserted instead (import.ts).
// Fields are separated by tabs; \N is NULL; a backslash escapes b f n r t v, itself, an octal
// byte (\NNN) or a hex one (\xHH). The bytes that escapes make are decoded as UTF-8 with the
// rest of the field, as PostgreSQL does.

const SIMPLE: Record<string, number> = { b: 8, f: 12, n: 10, r: 13, t: 9, v: 11 }

/** One row line (without its newline) as its fields' text, null for SQL NULL. */
export function parseCopyRow(line: string): (string | null)[] {
  return line.split('\t').map(unescapeField)
}

function unescapeField(field: string): string | null {
  if (field === '\\N') return null
  if (!field.includes('\\')) return field
  const bytes: number[] = []
  const text = Buffer.from(field, 'utf8')
  for (let i = 0; i < text.length; i++) {
    const byte = text[i]
    if (byte !== 0x5c || i + 1 >= text.length) {
      bytes.push(byte)
      continue
    }
    const next = String.fromCharCode(text[++i])
    if (next in SIMPLE) bytes.push(SIMPLE[next])
    else if (next >= '0' && next <= '7') {
      let digits = next
      while (digits.length < 3 && i + 1 < text.length && text[i + 1] >= 0x30 && text[i + 1] <= 0x37) digits += String.fromCharCode(text[++i])
      bytes.push(parseInt(digits, 8) & 0xff)
    } else if (next === 'x' && i + 1 < text.length && isHex(text[i + 1])) {
      let digits = String.fromCharCode(text[++i])
      if (i + 1 < text.length && isHex(text[i + 1])) digits += String.fromCharCode(text[++i])
      bytes.push(parseInt(digits, 16))
    } else bytes.push(text[i])
  }
  return Buffer.from(bytes).toString('utf8')
}

const isHex = (byte: number) => (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66)
