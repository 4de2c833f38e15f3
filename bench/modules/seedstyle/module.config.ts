export default { id: 'seedstyle', name: 'Seed-style inventory (bench)', version: '1.0.0', api: '1.x', permissions: ['seedstyle.items.read'] }
