export { nameParseCount } from './names.ts'
