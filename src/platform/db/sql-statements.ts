// Splits a SQL script into its statements, for servers that take one command per query: Citus
// forwards a distributed table's DDL to its workers with the query string it came in, and a
// worker refuses a string of several commands. PostgreSQL's own lexing rules decide where a
// statement ends: not inside a quoted string or identifier, a dollar-quoted body, a comment, or
// a SQL-standard function body (BEGIN ATOMIC ... END).

/** The script's statements, without their terminating semicolons; blank and comment-only ones dropped. */
export function splitSqlStatements(sql: string): string[] {
  const statements: string[] = []
  let start = 0
  let i = 0
  // Words since the statement began, for BEGIN ATOMIC; depth counts its open blocks.
  let previousWord = ''
  let atomicDepth = 0
  const push = (end: number) => {
    const text = sql.slice(start, end)
    if (hasCode(text)) statements.push(text.trim())
    start = end + 1
    previousWord = ''
  }
  while (i < sql.length) {
    const c = sql[i]
    const next = sql[i + 1]
    if (c === '-' && next === '-') {
      i = lineEnd(sql, i)
    } else if (c === '/' && next === '*') {
      i = blockCommentEnd(sql, i)
    } else if (c === "'") {
      // E'...' takes backslash escapes; a plain string only doubles its quotes.
      const escapes = i > 0 && /[eE]/.test(sql[i - 1]) && (i < 2 || !/[\w$]/.test(sql[i - 2]))
      i = quotedEnd(sql, i, "'", escapes)
    } else if (c === '"') {
      i = quotedEnd(sql, i, '"', false)
    } else if (c === '$' && (i === 0 || !/[\w$]/.test(sql[i - 1]))) {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i))
      if (tag) {
        const close = sql.indexOf(tag[0], i + tag[0].length)
        i = close === -1 ? sql.length : close + tag[0].length
      } else {
        i++
      }
    } else if (/[A-Za-z_]/.test(c)) {
      const word = /^[A-Za-z_][A-Za-z0-9_$]*/.exec(sql.slice(i))![0]
      const upper = word.toUpperCase()
      if (atomicDepth === 0 && previousWord === 'BEGIN' && upper === 'ATOMIC') atomicDepth = 1
      else if (atomicDepth > 0 && upper === 'CASE') atomicDepth++
      else if (atomicDepth > 0 && upper === 'END') atomicDepth--
      previousWord = upper
      i += word.length
    } else if (c === ';' && atomicDepth === 0) {
      push(i)
      i++
    } else {
      i++
    }
  }
  push(sql.length)
  return statements
}

/** Whether text holds anything but whitespace and comments. */
function hasCode(text: string): boolean {
  let i = 0
  while (i < text.length) {
    if (/\s/.test(text[i])) i++
    else if (text.startsWith('--', i)) i = lineEnd(text, i)
    else if (text.startsWith('/*', i)) i = blockCommentEnd(text, i)
    else return true
  }
  return false
}

function lineEnd(sql: string, i: number): number {
  const end = sql.indexOf('\n', i)
  return end === -1 ? sql.length : end + 1
}

/** Block comments nest in PostgreSQL. */
function blockCommentEnd(sql: string, i: number): number {
  let depth = 0
  while (i < sql.length) {
    if (sql.startsWith('/*', i)) {
      depth++
      i += 2
    } else if (sql.startsWith('*/', i)) {
      depth--
      i += 2
      if (depth === 0) return i
    } else {
      i++
    }
  }
  return i
}

function quotedEnd(sql: string, i: number, quote: string, backslashEscapes: boolean): number {
  i++
  while (i < sql.length) {
    if (backslashEscapes && sql[i] === '\\') {
      i += 2
    } else if (sql[i] === quote) {
      // A doubled quote is one quote inside the string.
      if (sql[i + 1] === quote) i += 2
      else return i + 1
    } else {
      i++
    }
  }
  return i
}
