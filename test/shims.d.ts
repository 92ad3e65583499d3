// `express4` is npm:express@4, installed to test the router on Express 4 too.
declare module 'express4' {
  import express from 'express';
  export default express;
}
