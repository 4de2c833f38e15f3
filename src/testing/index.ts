// `plinth/testing`: what a module's tap suite imports.
export { startModuleHost, expectStatus, type ModuleHost, type ModuleHostOptions, type ClientOptions, type ModuleClient } from './module-harness.ts'
