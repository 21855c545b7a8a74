/** A service child that does nothing: says `idle` and waits to be killed. */
console.log(JSON.stringify({ msg: 'idle' }))
setInterval(() => {}, 60_000)
