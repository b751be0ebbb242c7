// Runs once, when the mongo volume is first initialised (mounted into
// /docker-entrypoint-initdb.d by docker-compose.yml): the application's own
// user, limited to its database. readWrite for the data; dbAdmin for the
// migrations (indexes, collection validators).
const dbName = process.env.MONGODB_DB || "healthcrm";
db.getSiblingDB("admin").createUser({
  user: process.env.MONGO_APP_USER,
  pwd: process.env.MONGO_APP_PASSWORD,
  roles: [
    { role: "readWrite", db: dbName },
    { role: "dbAdmin", db: dbName },
  ],
});
