export default {
  id: 'inventory',
  name: 'Inventory',
  version: '1.0.0',
  api: '1.x',
  permissions: ['inventory.items.read', 'inventory.items.create', 'inventory.items.update', 'inventory.items.delete'],
  nav: {
    basePath: '/app/inventory',
    items: [{ path: '/app/inventory/items', label: 'Items', permissions: ['inventory.items.read'] }],
  },
}
