// The bytes of a tenant archive. One file, read and written as a stream, line by line:
//
//   PLINTH TENANT ARCHIVE 1
//   TABLE {"name":"items"}
//   <the table's rows in PostgreSQL's COPY text format, one line each>
//   \.
//   TABLE {"name":"notes"}
//   \.
//   MANIFEST {...}
//
// COPY's text format escapes every newline and backslash inside a value, so no row line is `\.`:
// that line ends a table as it does in pg_dump's plain output. The manifest comes last because it
// holds each table's row count and SHA-256, known only once the rows are written; an import reads
// the archive through once to check them before it creates anything (import.ts).
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { finished } from 'node:stream/promises'
import type { Writable } from 'node:stream'
import { problems } from '../../problems.ts'
import type { ArchivedTable, TenantManifest } from './manifest.ts'

const MAGIC = 'PLINTH TENANT ARCHIVE 1'
const TABLE = 'TABLE '
const MANIFEST = 'MANIFEST '
const END_OF_TABLE = Buffer.from('\\.\n')
/** A row line ending, then `\.` and its own: where a table's rows end. */
const END_AFTER_ROW = Buffer.from('\n\\.\n')
const NEWLINE = 0x0a
/** No header or manifest line is longer (a manifest of thousands of tables is well under it). */
const MAX_LINE = 64 * 1024 * 1024

/** What the rows of one table came to, as the manifest records them. */
export interface TableDigest {
  rows: number
  sha256: string
}

/** Where a table's rows go as they are read: a check, a COPY FROM, a batch of INSERTs. */
export interface TableSink {
  write(chunk: Buffer): void | Promise<void>
  end(): Promise<void>
}

/**
 * Writes `chunk`, waiting while the stream's buffer is full (so a 1 GB table is never held in
 * memory). A stream that fails or closes meanwhile (a caller who went away) fails the write: the
 * export ends, and gives back its snapshot's connection, rather than wait for a drain that never comes.
 */
export async function writeTo(out: Writable, chunk: Buffer | string): Promise<void> {
  if (out.destroyed) throw closedEarly(out)
  if (out.write(chunk)) return
  const stop = new AbortController()
  const drained = once(out, 'drain', { signal: stop.signal })
  const closed = once(out, 'close', { signal: stop.signal }).then(() => Promise.reject(closedEarly(out)))
  drained.catch(() => {})
  closed.catch(() => {})
  try {
    await Promise.race([drained, closed])
  } finally {
    stop.abort()
  }
}

const closedEarly = (out: Writable) => out.errored ?? new Error('the stream the archive was written to closed before it was complete')

/** A Writable as a sink: writes wait for drain, end waits until everything is flushed (or failed). */
export function writableSink(out: Writable): TableSink {
  return {
    write: (chunk) => writeTo(out, chunk),
    end: async () => {
      out.end()
      await finished(out)
    },
  }
}

/** How many rows a chunk of COPY text ends (its newlines). */
export function countLines(chunk: Buffer): number {
  let count = 0
  for (let at = chunk.indexOf(NEWLINE); at !== -1; at = chunk.indexOf(NEWLINE, at + 1)) count++
  return count
}

/** Writes an archive to `out`: the first line, then each table (table()), then the manifest (finish()). */
export class ArchiveWriter {
  constructor(private readonly out: Writable) {}

  start(): Promise<void> {
    return writeTo(this.out, `${MAGIC}\n`)
  }

  /** One table's rows, as COPY ... TO STDOUT wrote them (whole lines), hashed and counted on the way. */
  async table(name: string, rows: AsyncIterable<Buffer>): Promise<TableDigest> {
    await writeTo(this.out, `${TABLE}${JSON.stringify({ name })}\n`)
    const hash = createHash('sha256')
    let count = 0
    for await (const chunk of rows) {
      hash.update(chunk)
      count += countLines(chunk)
      await writeTo(this.out, chunk)
    }
    await writeTo(this.out, END_OF_TABLE)
    return { rows: count, sha256: hash.digest('hex') }
  }

  async finish(manifest: TenantManifest): Promise<void> {
    await writeTo(this.out, `${MANIFEST}${JSON.stringify(manifest)}\n`)
  }
}

/**
 * Reads an archive from `input`, handing each table's rows to the sink `onTable` gives for it
 * (chunks of whole or partial lines, in order, never the end marker), and returns the manifest's
 * JSON with what each table's rows came to. Anything that is not this format, or an archive cut
 * short, is refused as ARCHIVE_INVALID.
 */
export async function parseArchive(
  input: AsyncIterable<Buffer | string>,
  onTable: (name: string) => TableSink | Promise<TableSink>,
): Promise<{ manifest: unknown; tables: (TableDigest & { name: string })[] }> {
  const tables: (TableDigest & { name: string })[] = []
  let state = 'magic' as 'magic' | 'header' | 'rows' | 'done'
  let manifest: unknown
  let pending: Buffer = Buffer.alloc(0)
  // The table being read: its sink, hash and row count, and whether the bytes so far end a line.
  let table = null as { name: string; sink: TableSink; hash: ReturnType<typeof createHash>; rows: number } | null
  let atLineStart = true

  const emit = async (bytes: Buffer) => {
    if (bytes.length === 0) return
    table!.hash.update(bytes)
    table!.rows += countLines(bytes)
    atLineStart = bytes[bytes.length - 1] === NEWLINE
    await table!.sink.write(bytes)
  }
  const endTable = async () => {
    await table!.sink.end()
    tables.push({ name: table!.name, rows: table!.rows, sha256: table!.hash.digest('hex') })
    table = null
    state = 'header'
  }
  const line = async (text: string) => {
    if (state === 'magic') {
      if (text !== MAGIC) throw problems.archiveInvalid('This is not a plinth tenant archive (its first line is not "PLINTH TENANT ARCHIVE 1").')
      state = 'header'
    } else if (text.startsWith(TABLE)) {
      const name = parseJson(text.slice(TABLE.length), 'a table header')?.name
      if (typeof name !== 'string') throw problems.archiveInvalid('A table header of the archive names no table.')
      table = { name, sink: await onTable(name), hash: createHash('sha256'), rows: 0 }
      atLineStart = true
      state = 'rows'
    } else if (text.startsWith(MANIFEST)) {
      manifest = parseJson(text.slice(MANIFEST.length), 'the manifest')
      state = 'done'
    } else {
      throw problems.archiveInvalid(`The archive holds a line that is neither a table nor the manifest: ${JSON.stringify(text.slice(0, 40))}.`)
    }
  }

  for await (const piece of input) {
    const chunk = typeof piece === 'string' ? Buffer.from(piece) : piece
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
    while (pending.length > 0) {
      if (state === 'done') throw problems.archiveInvalid('The archive goes on after its manifest.')
      if (state !== 'rows') {
        const end = pending.indexOf(NEWLINE)
        if (end === -1) {
          if (pending.length > MAX_LINE) throw problems.archiveInvalid('The archive holds a header line longer than 64 MiB.')
          break
        }
        const text = pending.subarray(0, end).toString('utf8')
        pending = pending.subarray(end + 1)
        await line(text)
        continue
      }
      // Rows: up to the end marker, which is a line of its own.
      if (atLineStart && pending.length < END_OF_TABLE.length && END_OF_TABLE.subarray(0, pending.length).equals(pending)) break
      if (atLineStart && pending.subarray(0, END_OF_TABLE.length).equals(END_OF_TABLE)) {
        pending = pending.subarray(END_OF_TABLE.length)
        await endTable()
        continue
      }
      const marker = pending.indexOf(END_AFTER_ROW)
      if (marker !== -1) {
        await emit(pending.subarray(0, marker + 1))
        pending = pending.subarray(marker + END_AFTER_ROW.length)
        await endTable()
        continue
      }
      // Keep what could be the start of a marker split across chunks; hand on the rest.
      const keep = END_AFTER_ROW.length - 1
      if (pending.length <= keep) break
      await emit(pending.subarray(0, pending.length - keep))
      pending = Buffer.from(pending.subarray(pending.length - keep))
    }
  }
  if (state !== 'done') {
    await table?.sink.end().catch(() => {})
    throw problems.archiveInvalid(state === 'magic' ? 'The archive is empty.' : 'The archive ends before its manifest: it was cut short.')
  }
  return { manifest, tables }
}

function parseJson(text: string, what: string): any {
  try {
    return JSON.parse(text)
  } catch {
    throw problems.archiveInvalid(`The archive's ${what} is not JSON.`)
  }
}

/**
 * Holds what an archive's tables came to against what its manifest says: the same tables, in the
 * same order, with the same row counts and checksums. Any difference is refused, named.
 */
export function checkDigests(manifest: TenantManifest, read: (TableDigest & { name: string })[]): void {
  const listed: ArchivedTable[] = manifest.tables
  if (read.length !== listed.length || read.some((t, i) => t.name !== listed[i].name)) {
    throw problems.archiveCorrupt(`the archive holds the tables ${names(read)}, its manifest lists ${names(listed)}`)
  }
  for (const [i, table] of read.entries()) {
    if (table.sha256 !== listed[i].sha256) throw problems.archiveCorrupt(`the rows of table ${table.name} do not match the manifest's SHA-256`)
    if (table.rows !== listed[i].rows) throw problems.archiveCorrupt(`table ${table.name} holds ${table.rows} rows, the manifest says ${listed[i].rows}`)
  }
}

const names = (tables: { name: string }[]) => (tables.length ? tables.map((t) => t.name).join(', ') : 'none')

