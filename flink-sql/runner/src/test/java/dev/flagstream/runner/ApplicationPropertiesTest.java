package dev.flagstream.runner;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.Map;
import java.util.Properties;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * --properties-base64: runtime properties in the JSON Managed Flink writes to
 * /etc/flink/application_properties.json, read through the same library call and
 * concatSqlParts as on the service. generated/application-properties.json is what the
 * control plane sends (written by control-plane/src/deployments/runtime-properties.spec.ts):
 * the generated script 13 times over, in two groups.
 */
class ApplicationPropertiesTest {

    private static String resource(String name) throws IOException {
        try (InputStream in = ApplicationPropertiesTest.class.getResourceAsStream("/generated/" + name)) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    private static String b64(String json) {
        return Base64.getEncoder().encodeToString(json.getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void readsTheScriptAndJobNameTheControlPlaneSends() throws IOException {
        String json = resource("application-properties.json");
        SqlRunner.Invocation run = SqlRunner.parse(new String[] {"--properties-base64", b64(json)});
        assertEquals(resource("flag-evaluations.sql").repeat(13).strip(), run.script);
        assertEquals("flagstream-flag-evaluations-an-fixture-g3-0123abcd", run.jobName);
        assertTrue(json.contains("\"FlinkApplicationProperties.1\""), "the fixture spans two groups");
    }

    @Test
    void theJobNameOnTheCommandLineWins() throws IOException {
        String json = "[{\"PropertyGroupId\": \"FlinkApplicationProperties\", \"PropertyMap\": {\"sql.0\": \"INSERT INTO a\", \"sql.1\": \" SELECT 1\", \"job.name\": \"from-properties\"}}]";
        SqlRunner.Invocation run = SqlRunner.parse(new String[] {"--job-name", "mf-app", "--properties-base64", b64(json), "--validate"});
        assertEquals("INSERT INTO a SELECT 1", run.script);
        assertEquals("mf-app", run.jobName);
        assertTrue(run.validate);
        assertEquals("from-properties", SqlRunner.parse(new String[] {"--properties-base64", b64(json)}).jobName);
    }

    @Test
    void partsGoOnAcrossGroupsInOrderAndStopAtTheFirstMissingGroup() throws IOException {
        String json = "[{\"PropertyGroupId\": \"FlinkApplicationProperties.1\", \"PropertyMap\": {\"sql.1\": \"b\"}},"
                + " {\"PropertyGroupId\": \"FlinkApplicationProperties\", \"PropertyMap\": {\"sql.0\": \"a\"}},"
                + " {\"PropertyGroupId\": \"FlinkApplicationProperties.3\", \"PropertyMap\": {\"sql.2\": \"c\"}},"
                + " {\"PropertyGroupId\": \"Other\", \"PropertyMap\": {\"sql.2\": \"x\"}}]";
        Map<String, Properties> groups = SqlRunner.propertiesFromBase64(b64(json));
        assertEquals(4, groups.size());
        assertEquals("ab", SqlRunner.concatSqlParts(SqlRunner.flagstreamProperties(groups)));
    }

    @Test
    void refusesAKeyInTwoGroupsAndAScriptlessRun() throws IOException {
        String twice = "[{\"PropertyGroupId\": \"FlinkApplicationProperties\", \"PropertyMap\": {\"sql.0\": \"a\"}},"
                + " {\"PropertyGroupId\": \"FlinkApplicationProperties.1\", \"PropertyMap\": {\"sql.0\": \"b\"}}]";
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SqlRunner.parse(new String[] {"--properties-base64", b64(twice)}));
        assertEquals("runtime property sql.0 is in two groups", e.getMessage());
        String none = "[{\"PropertyGroupId\": \"Other\", \"PropertyMap\": {\"sql.0\": \"a\"}}]";
        assertNull(SqlRunner.flagstreamProperties(SqlRunner.propertiesFromBase64(b64(none))));
        e = assertThrows(IllegalArgumentException.class, () -> SqlRunner.parse(new String[] {"--properties-base64", b64(none)}));
        assertTrue(e.getMessage().startsWith("no SQL"), e.getMessage());
    }
}
