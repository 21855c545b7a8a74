#!/usr/bin/env node
// Launcher: evtctl is TypeScript run through tsx (no build step in this workspace).
import { register } from 'tsx/esm/api'

register()
await import('../src/main.ts')
