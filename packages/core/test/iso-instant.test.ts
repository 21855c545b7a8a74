import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { isIsoInstant } from '@eventplane/core'

const pad = (n: number, width = 2): string => String(n).padStart(width, '0')

/** Whether year-month-day is a day of the proleptic Gregorian calendar, by Date's own calendar (not ours). */
function realDay(year: number, month: number, day: number): boolean {
  const d = new Date(0)
  d.setUTCFullYear(year, month - 1, day)
  return d.getUTCFullYear() === year && d.getUTCMonth() === month - 1 && d.getUTCDate() === day
}

describe('isIsoInstant', () => {
  test('an instant is accepted exactly when its day exists, its time of day is real and its offset under 16 h', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 9999 }),
        fc.integer({ min: 0, max: 13 }),
        fc.integer({ min: 0, max: 32 }),
        fc.integer({ min: 0, max: 24 }),
        fc.integer({ min: 0, max: 60 }),
        fc.integer({ min: 0, max: 60 }),
        fc.constantFrom('', '.5', '.123456'),
        fc.oneof(fc.constant(null), fc.tuple(fc.constantFrom('+', '-'), fc.nat(17), fc.nat(61))),
        (year, month, day, hour, minute, second, fraction, offset) => {
          const zone = offset === null ? 'Z' : `${offset[0]}${pad(offset[1])}:${pad(offset[2])}`
          const text = `${pad(year, 4)}-${pad(month)}-${pad(day)}T${pad(hour)}:${pad(minute)}:${pad(second)}${fraction}${zone}`
          const expected =
            year >= 1 &&
            month >= 1 &&
            month <= 12 &&
            day >= 1 &&
            realDay(year, month, day) &&
            hour <= 23 &&
            minute <= 59 &&
            second <= 59 &&
            (offset === null || (offset[1] <= 15 && offset[2] <= 59))
          assert.equal(isIsoInstant(text), expected, text)
        },
      ),
      { numRuns: 20_000 },
    )
  })

  test('leap days, month ends and offsets at their bounds', () => {
    for (const ok of [
      '2024-02-29T00:00:00Z',
      '2000-02-29T23:59:59.123456+15:59',
      '0001-01-01T00:00:00Z',
      '9999-12-31T23:59:59-00:00',
      '2024-01-31T12:00:00.1+01:00',
    ])
      assert.equal(isIsoInstant(ok), true, ok)
    for (const bad of [
      '2023-02-29T00:00:00Z',
      '1900-02-29T00:00:00Z',
      '2024-04-31T00:00:00Z',
      '0000-01-01T00:00:00Z',
      '2024-02-30T00:00:00Z',
      '2024-01-01T24:00:00Z',
      '2024-01-01T00:60:00Z',
      '2024-01-01T00:00:60Z',
      '2024-01-01T00:00:00+16:00',
      '2024-01-01T00:00:00-15:60',
      '2024-01-01T00:00:00.1234567Z',
      '2024-01-01T00:00:00z',
      '2024-01-01T00:00:00',
      '2024-01-01T00:00:00+0100',
      '2024-01-01 00:00:00Z',
      '２０２４-01-01T00:00:00Z',
      ' 2024-01-01T00:00:00Z',
    ])
      assert.equal(isIsoInstant(bad), false, bad)
  })
})
