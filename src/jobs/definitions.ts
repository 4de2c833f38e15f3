// What modules declare of their jobs (host API 1.2, docs/jobs.md): the handler of each job, its
// payload schema and defaults, and the schedules. Filled by ctx.jobs.define and ctx.jobs.schedule
// as modules register; read by the runner (runner.ts) and by enqueue (enqueue.ts).
import type { TSchema } from 'typebox'
import type { Validator } from 'typebox/compile'

/** Five cron fields (graphile-worker's syntax, checked in full when the runner starts). */
const CRON = /^([0-9*,/-]+\s+){4}[0-9*,/-]+$/

/** A job's name: what follows its module's id in `<module>/<name>`. */
export const JOB_NAME = /^[a-z][a-zA-Z0-9_.-]{0,59}$/

export interface JobDefaults {
  /** Attempts before the job is kept as failed (default 5). */
  maxAttempts?: number
  /** Lower runs first (default 0). */
  priority?: number
}

export interface JobDefinition extends JobDefaults {
  moduleId: string
  name: string
  /** `(payload, job)`; its own context type is the contract's (ModuleJob). */
  handler: (payload: any, job: any) => unknown
  /** Compiled from the definition's TypeBox schema: checks each payload at enqueue. */
  validator: Validator | undefined
}

export interface JobSchedule {
  moduleId: string
  name: string
  cron: string
  payload: unknown
}

/** A module's job misused (a name that is not one, a job defined twice, a bad cron): told at register. */
export class JobDefinitionError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'JobDefinitionError'
  }
}

/**
 * TypeBox's Compile, passed in by the module context: this file loads nothing of TypeBox, whose
 * some 340 files a process that runs no module (the CLI's export, say) would pay 0.15 s to load.
 */
export type CompileSchema = (schema: TSchema) => Validator

export class JobDefinitions {
  private readonly jobs = new Map<string, JobDefinition>()
  readonly schedules: JobSchedule[] = []

  /** The task name graphile-worker knows the job by. */
  static task(moduleId: string, name: string) {
    return `${moduleId}/${name}`
  }

  /** `options` as the module gave them (undefined when it gave none). */
  define(moduleId: string, name: string, handler: JobDefinition['handler'], given: (JobDefaults & { schema?: TSchema }) | undefined, compile: CompileSchema) {
    const options = given ?? {}
    if (typeof name !== 'string' || !JOB_NAME.test(name)) {
      throw new JobDefinitionError(`ctx.jobs.define: ${JSON.stringify(name)} is not a job name (a letter, then letters, digits, "_", "." or "-"; at most 60)`)
    }
    if (typeof handler !== 'function') throw new JobDefinitionError(`ctx.jobs.define("${name}"): the handler must be a function`)
    const task = JobDefinitions.task(moduleId, name)
    if (this.jobs.has(task)) throw new JobDefinitionError(`ctx.jobs.define: job "${name}" is defined twice`)
    checkDefaults(`ctx.jobs.define("${name}")`, options)
    let validator: Validator | undefined
    try {
      validator = options.schema ? compile(options.schema) : undefined
    } catch (err) {
      throw new JobDefinitionError(`ctx.jobs.define("${name}"): its schema does not compile: ${(err as Error).message}`)
    }
    this.jobs.set(task, { moduleId, name, handler, validator, maxAttempts: options.maxAttempts, priority: options.priority })
  }

  schedule(moduleId: string, name: string, cron: string, options: { payload?: unknown } = {}) {
    if (!this.jobs.has(JobDefinitions.task(moduleId, name))) {
      throw new JobDefinitionError(`ctx.jobs.schedule("${name}"): define the job first (ctx.jobs.define)`)
    }
    if (typeof cron !== 'string' || !CRON.test(cron.trim())) {
      throw new JobDefinitionError(`ctx.jobs.schedule("${name}", ${JSON.stringify(cron)}): not a cron expression (five fields: minute hour day month weekday, in UTC)`)
    }
    if (this.schedules.some((s) => s.moduleId === moduleId && s.name === name)) {
      throw new JobDefinitionError(`ctx.jobs.schedule: job "${name}" is scheduled twice`)
    }
    this.schedules.push({ moduleId, name, cron, payload: options.payload ?? null })
  }

  get(moduleId: string, name: string): JobDefinition | undefined {
    return this.jobs.get(JobDefinitions.task(moduleId, name))
  }

  all(): JobDefinition[] {
    return [...this.jobs.values()]
  }

  /** A module that failed to load takes its jobs and schedules with it: none of its code runs. */
  forget(moduleId: string) {
    for (const [task, job] of this.jobs) if (job.moduleId === moduleId) this.jobs.delete(task)
    for (let i = this.schedules.length - 1; i >= 0; i--) if (this.schedules[i]!.moduleId === moduleId) this.schedules.splice(i, 1)
  }
}

/** maxAttempts 1..32767 and priority -32768..32767, as graphile-worker stores them. */
export function checkDefaults(where: string, options: JobDefaults) {
  const { maxAttempts, priority } = options
  if (maxAttempts !== undefined && (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 32767)) {
    throw new JobDefinitionError(`${where}: maxAttempts must be a whole number from 1 to 32767`)
  }
  if (priority !== undefined && (!Number.isInteger(priority) || priority < -32768 || priority > 32767)) {
    throw new JobDefinitionError(`${where}: priority must be a whole number from -32768 to 32767`)
  }
}
