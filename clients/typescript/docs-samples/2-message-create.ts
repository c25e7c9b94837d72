import { Octohooks } from "octohooks";

const octohooks = new Octohooks("AUTH_TOKEN");

await octohooks.message.create("app_teexfqn3o09y1fnmm631r0fo8uq", {
  channels: [],
  eventType: "customer.created",
  uid: "774fa91a-510b-4a35-9799-6c233f6af790",
  payload: {
    email: "customer@email.com",
    integration: 100032,
    domain: "test",
    customer_code: "cus_xnxdt6s1zg1f4nx",
    id: 1173,
    identified: false,
    identifications: null,
    createdAt: "2016-03-29T20:03:09.584Z",
    updatedAt: "2016-03-29T20:03:09.584Z",
  },
});
