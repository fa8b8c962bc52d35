const mods = process.argv.slice(2);
for (const m of mods) await import(m);
for (let i = 0; i < 5; i++) { global.gc(); await new Promise((r) => setTimeout(r, 50)); }
const u = process.memoryUsage();
console.log(mods.join(' ').slice(-70).padEnd(70), 'rss', (u.rss / 2 ** 20).toFixed(1), 'heapUsed', (u.heapUsed / 2 ** 20).toFixed(1), 'heapTotal', (u.heapTotal / 2 ** 20).toFixed(1));
