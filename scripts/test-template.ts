// The suite's migrated template database (see packages/store-pg/src/testing/template-database.ts):
// `create` migrates one and prints its name, which scripts/test.sh exports as EP_TEST_TEMPLATE_DB so each
// test database is a copy of it instead of 13 migrations applied again; `drop NAME` removes it (test.sh's exit trap).
import { createTemplateDatabase, dropTemplateDatabase } from '@eventplane/store-pg/testing'

const [command, name] = process.argv.slice(2)
if (command === 'create') process.stdout.write(`${await createTemplateDatabase('ep_suite_template')}\n`)
else if (command === 'drop' && name) await dropTemplateDatabase(name)
else {
  process.stderr.write('usage: test-template.ts create | drop NAME\n')
  process.exit(1)
}
