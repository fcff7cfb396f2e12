from django.test import SimpleTestCase, override_settings


class ViewTests(SimpleTestCase):
    def test_index(self):
        self.assertContains(self.client.get("/"), "five says hello")

    def test_version_is_a_commit(self):
        body = self.client.get("/version/").content.decode().strip()
        self.assertTrue(all(c in "0123456789abcdef" for c in body), body)

    @override_settings(MAINTENANCE_MODE=True)
    def test_maintenance_mode(self):
        self.assertEqual(self.client.get("/").status_code, 503)
        self.assertEqual(self.client.get("/version/").status_code, 200)
