// The CommonJS form: require() returns the Herald class.
import Herald = require('@herald-push/client');

const h = new Herald('ws://localhost:8080/ws', { connect: false });
const err: Herald.HeraldError = new Herald.HeraldError('closed');
const { Herald: Same } = Herald;
console.log(h.state, err.code, Same === Herald);
